"""The record protocol (docs/protocol.md) and the queue file format
(docs/queue-format.md) in Python, for tests that talk to daemons and read
what they left in the queue.

    c = CleanupClient(inst.queue / "private" / "cleanup")
    qid = c.open(sender="a@example.com", client_address="127.0.0.1")
    c.rcpt("b@example.org")
    c.data(b"Subject: hi\\n\\nbody\\n")
    reply = c.end()          # {"status": "ok", "queue_id": ..., ...}
    qf = QueueFile(inst.queue / "incoming" / reply["queue_id"])
    qf.recipients, qf.sender, qf.attributes, qf.content
"""
import os
import pathlib
import socket
import time
import struct

RECORD_VERSION = 1


def encode(attrs):
    """One wire record from (name, value) pairs; values str or bytes."""
    body = bytearray([RECORD_VERSION])
    for name, value in attrs:
        if isinstance(value, str):
            value = value.encode()
        if isinstance(value, int):
            value = str(value).encode()
        n = name.encode()
        body += bytes([len(n)]) + n + struct.pack(">I", len(value)) + value
    return struct.pack(">I", len(body)) + bytes(body)


def _read_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} "
                           "bytes")
        data += chunk
    return bytes(data)


def decode(body):
    """Attributes of a record body (after the length field) as a dict."""
    if not body or body[0] != RECORD_VERSION:
        raise ValueError("bad record version")
    attrs, pos = {}, 1
    while pos < len(body):
        n = body[pos]
        name = body[pos + 1:pos + 1 + n].decode()
        pos += 1 + n
        (vlen,) = struct.unpack(">I", body[pos:pos + 4])
        pos += 4
        attrs[name] = body[pos:pos + vlen]
        pos += vlen
    return attrs


def read_record(sock, max_size=1 << 20):
    """The next record from sock as {name: bytes}; EOFError at the end."""
    (length,) = struct.unpack(">I", _read_exact(sock, 4))
    if length > max_size:
        raise ValueError(f"record of {length} bytes")
    return decode(_read_exact(sock, length))


def text_reply(attrs):
    """A reply with its values as text, code as int."""
    out = {k: v.decode(errors="replace") for k, v in attrs.items()}
    if "code" in out:
        out["code"] = int(out["code"])
    return out


class CleanupClient:
    """A producer talking to the cleanup service, as smtpd does."""

    def __init__(self, path, timeout=20):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.queue_id = None

    def send(self, *attrs):
        self.sock.sendall(encode(attrs))

    def reply(self):
        return text_reply(read_record(self.sock))

    def open(self, sender="", flags=0, **attrs):
        pairs = [("request", "open"), ("sender", sender)]
        if flags:
            pairs.append(("flags", str(flags)))
        pairs += list(attrs.items())
        self.send(*pairs)
        r = self.reply()
        self.queue_id = r.get("queue_id")
        return r

    def rcpt(self, address, orcpt=None, notify=None):
        pairs = [("request", "rcpt"), ("address", address)]
        if orcpt is not None:
            pairs.append(("orcpt", orcpt))
        if notify is not None:
            pairs.append(("notify", notify))
        self.send(*pairs)

    def data(self, content, chunk=65536):
        if isinstance(content, str):
            content = content.encode()
        for i in range(0, len(content), chunk):
            self.send(("request", "data"), ("data", content[i:i + chunk]))

    def end(self):
        self.send(("request", "end"))
        return self.reply()

    def close(self):
        self.sock.close()


def send_message(path, sender, recipients, content, flags=0, **attrs):
    """One whole conversation; returns (open reply, end reply).
    recipients: addresses, (address, orcpt, notify) tuples, or dicts with
    those keys."""
    c = CleanupClient(path)
    try:
        opened = c.open(sender=sender, flags=flags, **attrs)
        for r in recipients:
            if isinstance(r, str):
                c.rcpt(r)
            elif isinstance(r, dict):
                c.rcpt(**r)
            else:
                c.rcpt(*r)
        c.data(content)
        return opened, c.end()
    finally:
        c.close()


def queue_through_cleanup(queue_dir, sender, recipients, content,
                          into_active=True, **attrs):
    """A message written by the cleanup service of queue_dir (send_message),
    then moved from incoming/ into active/ as qmgr does, unless into_active
    is false (the instance's own qmgr takes it then); its queue ID."""
    queue_dir = pathlib.Path(queue_dir)
    opened, reply = send_message(queue_dir / "private" / "cleanup", sender,
                                 recipients, content, **attrs)
    assert opened["status"] == "ok", opened
    assert reply["status"] == "ok", reply
    qid = reply["queue_id"]
    if into_active:
        os.rename(queue_dir / "incoming" / qid, queue_dir / "active" / qid)
    return qid


CLEANUP_FLAG_SUBMISSION = 1
CLEANUP_FLAG_NO_CHECKS = 2
CLEANUP_FLAG_NO_REWRITE = 4
CLEANUP_FLAG_EXTRACT = 8


def read_queue_records(data):
    """[(type, data)] of a whole queue file; ValueError when incomplete."""
    records, pos = [], 0
    while pos < len(data):
        if pos + 5 > len(data):
            raise ValueError("file ends inside a record header")
        rtype = chr(data[pos])
        (length,) = struct.unpack(">I", data[pos + 1:pos + 5])
        if pos + 5 + length > len(data):
            raise ValueError("file ends inside a record")
        records.append((rtype, data[pos + 5:pos + 5 + length]))
        pos += 5 + length
    if not records or records[-1][0] != "E":
        raise ValueError("no end record")
    return records


class QueueFile:
    """A queue file read back: its envelope and its content."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.records = read_queue_records(f.read())
        self.attributes = {}
        self.recipients = []   # [(address, orcpt or None, notify or None)]
        self.sender = None
        self.content = b""
        orcpt = notify = None
        for rtype, data in self.records:
            if rtype == "A":
                name, _, value = data.decode().partition("=")
                self.attributes[name] = value
            elif rtype == "F":
                self.sender = data.decode()
            elif rtype == "O":
                orcpt = data.decode()
            elif rtype == "N":
                notify = data.decode()
            elif rtype == "R":
                self.recipients.append((data.decode(), orcpt, notify))
                orcpt = notify = None
            elif rtype == "B":
                self.content += data

    @property
    def addresses(self):
        return [r[0] for r in self.recipients]

    @property
    def types(self):
        return "".join(t for t, _ in self.records)

    def header(self):
        """The header as text (up to the first empty line)."""
        return self.content.split(b"\n\n", 1)[0].decode(errors="replace")

    def body(self):
        parts = self.content.split(b"\n\n", 1)
        return parts[1] if len(parts) > 1 else b""


def queue_file_offsets(data):
    """{"content_offset": N, "content_size": N, "recipient_offsets": [...],
    "arrival_time": "S.U"} of a whole queue file, as qmgr sends them."""
    out = {"recipient_offsets": [], "content_offset": 0, "content_size": 0,
           "arrival_time": "0"}
    pos = 0
    while pos + 5 <= len(data):
        rtype = chr(data[pos])
        (length,) = struct.unpack(">I", data[pos + 1:pos + 5])
        body = data[pos + 5:pos + 5 + length]
        if rtype == "S":
            fields = body.split()
            out["content_offset"] = int(fields[0])
            out["content_size"] = int(fields[1])
        elif rtype == "T":
            out["arrival_time"] = body.decode()
        elif rtype == "R":
            out["recipient_offsets"].append(pos)
        pos += 5 + length
    return out


def delivery_request(queue_dir, queue_id, recipients, queue_name="active",
                     nexthop="", sent_at=None, **attrs):
    """The bytes of one delivery request, as qmgr sends it (docs/protocol.md,
    "Delivery agents"), for a queue file that cleanup wrote and a test moved
    into queue_name/.  recipients: addresses, or dicts with address, orcpt,
    notify.  sent_at: the active_time and dispatch_time (time.time()'s
    form), now when None."""
    rel = f"{queue_name}/{queue_id}"
    qf = QueueFile(queue_dir / rel)
    with open(queue_dir / rel, "rb") as f:
        info = queue_file_offsets(f.read())
    now = "%.6f" % (time.time() if sent_at is None else sent_at)
    env = [("request", "deliver"), ("queue_id", queue_id),
           ("queue_file", rel), ("content_offset", info["content_offset"]),
           ("content_size", info["content_size"]),
           ("sender", qf.sender or ""), ("nexthop", nexthop),
           ("arrival_time", info["arrival_time"]), ("active_time", now),
           ("dispatch_time", now), ("recipient_count", len(recipients))]
    for name in ("dsn_envid", "dsn_ret", "encoding", "smtputf8"):
        if name in qf.attributes:
            env.append((name, qf.attributes[name]))
    env += list(attrs.items())
    data = encode(env)
    for i, r in enumerate(recipients):
        r = {"address": r} if isinstance(r, str) else dict(r)
        pairs = [("request", "recipient"), ("index", i),
                 ("address", r["address"])]
        for name in ("orcpt", "notify"):
            if r.get(name):
                pairs.append((name, r[name]))
        offs = info["recipient_offsets"]
        pairs.append(("offset", offs[i] if i < len(offs) else 0))
        data += encode(pairs)
    return data + encode([("request", "end")])


def read_results(sock, count):
    """The results of one request, in index order, and its status=done
    record."""
    results = {}
    while True:
        rec = text_reply(read_record(sock))
        if rec.get("status") == "done":
            return [results.get(i) for i in range(count)], rec
        results[int(rec["index"])] = rec


def deliver(agent_socket, queue_dir, queue_id, recipients, queue_name="active",
            nexthop="", timeout=60, **attrs):
    """One delivery request to an agent (delivery_request), on a connection
    of its own.  Returns the results as a list of text dicts in index
    order."""
    data = delivery_request(queue_dir, queue_id, recipients, queue_name,
                            nexthop, **attrs)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(agent_socket))
    try:
        sock.sendall(data)
        return read_results(sock, len(recipients))[0]
    finally:
        sock.close()
