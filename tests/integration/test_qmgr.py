"""The queue manager with the error and retry agents: a real instance
(master, cleanup, qmgr, error, retry), mail injected through cleanup, and
what a user observes: log lines, queue files, recipient logs."""
import os
import pwd
import re
import signal
import socket
import struct
import subprocess
import threading
import time

from conftest import BIN, IS_ROOT, wait_until
from records import (CleanupClient, QueueFile, decode, encode,
                     queue_file_offsets, read_record, send_message,
                     text_reply)

MESSAGE = b"From: a@example.com\nTo: b@example.org\nSubject: hi\n\nbody\n"


def write_transport(inst, text):
    """etc/transport as hash:, rebuilt with postino-map (qmgr reopens a
    changed table within a second or two)."""
    path = inst.etc / "transport"
    inst._write(path, text)
    subprocess.run(inst.as_user([str(BIN / "postino-map"), f"hash:{path}"]),
                   check=True, capture_output=True)
    return f"hash:{path}"


def start(inst, transport="", main_cf="", extra_master="", qmgr=True):
    maps = write_transport(inst, transport)
    inst.write_main_cf(
        "myhostname = mx.example.net\n"
        f"transport_maps = {maps}\n"
        "minimal_backoff_time = 1s\n"
        "maximal_backoff_time = 4s\n"
        "queue_run_delay = 1s\n" + main_cf)
    inst.write_master_cf(
        inst.cleanup_line() +
        (f"qmgr unix n - n 300 1 {BIN}/qmgr\n" if qmgr else "") +
        f"error unix - - n - - {BIN}/error\n"
        f"retry unix - - n - - {BIN}/error\n" + extra_master)
    inst.start()
    return inst.queue / "private" / "cleanup"


def inject(sock, recipients, sender="a@example.com", content=MESSAGE):
    """recipients: addresses or (address, notify) pairs.  The queue ID."""
    _, reply = send_message(sock, sender, [
        r if isinstance(r, str) else (r[0], None, r[1]) for r in recipients],
        content)
    assert reply["status"] == "ok", reply
    return reply["queue_id"]


def names(inst, sub):
    try:
        return sorted(os.listdir(inst.queue / sub))
    except FileNotFoundError:
        return []


def wait_for(predicate, timeout=15, what="condition"):
    wait_until(predicate, timeout, what)


def log_entries(path):
    """The records of a recipient log, as text dicts."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos + 4 <= len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        out.append(text_reply(decode(data[pos + 4:pos + 4 + n])))
        pos += 4 + n
    return out


def recipient_offsets(data):
    """Offsets of the R and D records of a queue file."""
    out, pos = [], 0
    while pos + 5 <= len(data):
        (length,) = struct.unpack(">I", data[pos + 1:pos + 5])
        if chr(data[pos]) in "RD":
            out.append(pos)
        pos += 5 + length
    return out


class PrivateListener:
    """A listening socket private/NAME that qmgr connects to; accepted(conn)
    gets each connection, from a thread of its own, until close()."""

    def __init__(self, inst, name, timeout=60):
        self.path = inst.queue / "private" / name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        os.chmod(self.path, 0o666)
        self.sock.listen(50)
        self.timeout = timeout

    def listen(self):
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(self.timeout)
        try:
            while True:
                conn, _ = self.sock.accept()
                self.accepted(conn)
        except OSError:
            pass

    def close(self):
        self.sock.close()
        self.path.unlink()


class FakeAgent(PrivateListener):
    """A socket private/NAME that plays a broken delivery agent: "hold"
    takes connections and never answers, "close" closes each at once,
    "backlog" never even accepts."""

    def __init__(self, inst, name, mode):
        super().__init__(inst, name, timeout=30)
        self.held = []
        self.mode = mode
        if mode != "backlog":
            self.listen()

    def accepted(self, conn):
        if self.mode == "close":
            conn.close()
        else:
            self.held.append(conn)

    def close(self):
        super().close()
        for c in self.held:
            c.close()


def test_mail_queued_before_the_start_is_delivered(instance):
    sock = start(instance, "gone.example error:\n", qmgr=False)
    qid = inject(sock, [("joe@gone.example", "NEVER")])
    instance.stop()
    assert names(instance, "incoming") == [qid]
    # The master's first wakeup starts qmgr, which scans incoming/.
    start(instance, "gone.example error:\n")
    instance.wait_log(rf"{qid}: removed")


def test_error_transport_without_notify_removes_the_message(instance):
    sock = start(instance, "gone.example error:5.1.2 domain is gone\n")
    qid = inject(sock, [("joe@gone.example", "NEVER")])
    instance.wait_log(rf"{qid}: removed")
    log = instance.log()
    assert re.search(rf"{qid}: from=<a@example.com>, size=\d+, nrcpt=1 "
                     r"\(queue active\)", log)
    assert re.search(rf"{qid}: to=<joe@gone.example>, relay=none, "
                     r"delay=[\d.]+, delays=[\d./]+, dsn=5.1.2, "
                     r"status=bounced \(domain is gone\)", log)
    for sub in ("incoming", "active", "deferred", "bounce", "defer"):
        assert names(instance, sub) == [], sub


def test_error_transport_writes_the_bounce_log(instance):
    sock = start(instance, "gone.example error:5.1.2 domain is gone\n"
                           "ok.example error:\n")
    qid = inject(sock, ["joe@gone.example", ("ann@ok.example", "NEVER")])
    instance.wait_log(rf"{qid}: to=<ann@ok.example>.*status=bounced "
                      r"\(mail for this destination is refused\)")
    wait_for(lambda: names(instance, "deferred") == [qid],
             what="the message in deferred/")
    entries = log_entries(instance.queue / "bounce" / qid)
    assert [(e["recipient"], e["status"], e["action"], e["text"])
            for e in entries] == [("joe@gone.example", "5.1.2", "failed",
                                   "domain is gone")]
    # Without a bounce service the notice cannot be sent: the message
    # waits, every recipient done.
    instance.wait_log(rf"warning: {qid}: failure notice not sent: connect "
                      r"to private/bounce")
    assert QueueFile(instance.queue / "deferred" / qid).addresses == []


def test_retry_defers_with_growing_delays_then_finishes(instance):
    sock = start(instance, "slow.example retry:4.4.1 try later\n")
    qid = inject(sock, [("joe@slow.example", "NEVER")])
    path = instance.queue / "deferred" / qid
    waits = []
    seen = 0
    deadline = time.monotonic() + 30
    while len(waits) < 4 and time.monotonic() < deadline:
        found = re.findall(rf"{qid}: to=<joe@slow.example>.*dsn=4.4.1, "
                           r"status=deferred \(try later\)", instance.log())
        if len(found) > seen and path.exists():
            seen = len(found)
            waits.append(path.stat().st_mtime - time.time())
        time.sleep(0.02)
    assert len(waits) == 4, instance.log()
    # The next attempt is in the future, and the wait grows (message age
    # clamped to 1..4 s).
    assert all(w > -0.5 for w in waits), waits
    assert waits[-1] > waits[0] + 0.5, waits
    entries = log_entries(instance.queue / "defer" / qid)
    assert entries[-1]["status"] == "4.4.1"
    assert entries[-1]["text"] == "try later"
    assert entries[-1]["action"] == "delayed"
    # The transport is changed: the next attempt finishes the message.
    write_transport(instance, "slow.example error:5.1.1 no such user\n")
    instance.wait_log(rf"{qid}: removed", timeout=20)
    assert re.search(rf"{qid}: to=<joe@slow.example>.*dsn=5.1.1, "
                     r"status=bounced \(no such user\)", instance.log())
    assert names(instance, "deferred") == []
    assert names(instance, "defer") == []


def test_flush_tries_a_deferred_message_at_once(instance):
    sock = start(instance, "slow.example retry:\n",
                 main_cf="minimal_backoff_time = 3600s\n"
                         "maximal_backoff_time = 7200s\n")
    qid = inject(sock, [("joe@slow.example", "NEVER")])
    pattern = rf"{qid}: to=<joe@slow.example>.*status=deferred"
    instance.wait_log(pattern)
    wait_for(lambda: names(instance, "deferred") == [qid])
    assert (instance.queue / "deferred" / qid).stat().st_mtime > \
        time.time() + 3000
    time.sleep(1.5)
    assert len(re.findall(pattern, instance.log())) == 1
    r = instance.postino("flush")
    assert r.returncode == 0, r.stderr
    instance.wait_log(pattern, count=2)


def test_queue_lifetime_expires_the_message(instance):
    sock = start(instance, "slow.example retry:4.4.1 try later\n",
                 main_cf="maximal_queue_lifetime = 2s\n")
    qid = inject(sock, [("joe@slow.example", "NEVER")])
    instance.wait_log(rf"{qid}: from=<a@example.com>, status=expired, "
                      r"returned to sender", timeout=20)
    instance.wait_log(rf"{qid}: removed")
    assert names(instance, "deferred") == []
    assert names(instance, "bounce") == []


def test_expired_recipient_is_in_the_bounce_log(instance):
    sock = start(instance, "slow.example retry:4.4.1 try later\n",
                 main_cf="maximal_queue_lifetime = 0\n")
    qid = inject(sock, ["joe@slow.example"])
    instance.wait_log(rf"{qid}: from=<a@example.com>, status=expired")
    wait_for(lambda: (instance.queue / "bounce" / qid).exists())
    entries = log_entries(instance.queue / "bounce" / qid)
    assert [(e["recipient"], e["status"], e["action"]) for e in entries] == \
        [("joe@slow.example", "4.4.1", "failed")]


def test_killed_qmgr_resumes_its_messages(instance):
    # A delivery agent that never answers keeps messages in active/.
    sock = start(instance, "hang.example hang:\n",
                 main_cf="ipc_timeout = 2s\n")
    agent = FakeAgent(instance, "hang", "backlog")
    try:
        ids = [inject(sock, [(f"u{i}@hang.example", "NEVER")])
               for i in range(3)]
        wait_for(lambda: names(instance, "active") == sorted(ids),
                 what="messages in active/")
        [pid] = instance.pids_of("qmgr")
        os.kill(pid, signal.SIGKILL)
    finally:
        agent.close()
    # The master starts a new qmgr at the next trigger (here postino
    # flush), which takes the messages back; with the transport changed
    # they finish.
    write_transport(instance, "hang.example error:\n")
    wait_for(lambda: pid not in instance.pids_of("qmgr"), what="qmgr gone")
    assert instance.postino("flush").returncode == 0
    instance.wait_log(r"moved 3 messages from active back to incoming",
                      timeout=20)
    for qid in ids:
        instance.wait_log(rf"{qid}: removed", timeout=20)
    for sub in ("incoming", "active", "deferred"):
        assert names(instance, sub) == [], sub


def write_log_file(inst, sub, qid, entries):
    """sub/QID holding the given entries ((name, value) lists), owned as
    qmgr's own files are."""
    path = inst.queue / sub / qid
    path.write_bytes(b"".join(encode(e) for e in entries))
    owner = inst.user or ("postino" if IS_ROOT else None)
    if owner:
        pw = pwd.getpwnam(owner)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def test_logs_of_an_earlier_pass_are_found_when_loaded(instance):
    # Logs that a pass cut short by a crash (or an earlier pass) left, as
    # written while qmgr is stopped: qmgr finds them when it loads the
    # message.  A defer log and an empty trace log go with the message; a
    # bounce log with an entry asks for its notice (no bounce service
    # here: it waits in deferred/ with its log).
    sock = start(instance, "gone.example error:\n", qmgr=False)
    plain = inject(sock, [("joe@gone.example", "NEVER")])
    failed = inject(sock, [("ann@gone.example", "NEVER")])
    instance.stop()
    now = int(time.time())
    write_log_file(instance, "defer", plain, [[
        ("recipient", "joe@gone.example"), ("status", "4.4.1"),
        ("action", "delayed"), ("text", "try later"), ("time", now)]])
    write_log_file(instance, "trace", plain, [])
    write_log_file(instance, "bounce", failed, [[
        ("recipient", "old@gone.example"), ("status", "5.1.1"),
        ("action", "failed"), ("text", "no such user"), ("time", now)]])
    start(instance, "gone.example error:\n")
    instance.wait_log(rf"{plain}: removed")
    assert plain not in names(instance, "defer")
    assert plain not in names(instance, "trace")
    instance.wait_log(rf"warning: {failed}: failure notice not sent: "
                      r"connect to private/bounce")
    wait_for(lambda: names(instance, "deferred") == [failed],
             what="the message in deferred/")
    assert names(instance, "bounce") == [failed]
    assert not re.search(rf"{failed}: removed", instance.log())


def test_slow_destination_does_not_delay_others(instance):
    sock = start(instance, "slow.example hang:\n"
                           "fast.example error:5.0.0 refused\n",
                 main_cf="ipc_timeout = 4s\n")
    agent = FakeAgent(instance, "hang", "hold")
    try:
        slow = [inject(sock, [(f"u{i}@slow.example", "NEVER")])
                for i in range(3)]
        t0 = time.monotonic()
        fast = inject(sock, [("joe@fast.example", "NEVER")])
        instance.wait_log(rf"{fast}: removed", timeout=10)
        assert time.monotonic() - t0 < 3
        # The agent that never answers: its recipients are deferred after
        # ipc_timeout, with a warning.
        for qid in slow:
            instance.wait_log(rf"warning: {qid}: delivery agent hang timed "
                              r"out", timeout=20)
            instance.wait_log(rf"{qid}: to=<u\d@slow.example>, relay=none, "
                              r".*status=deferred \(delivery agent timed "
                              r"out\)")
    finally:
        agent.close()


def test_lost_connection_and_dead_destination(instance):
    # An agent that closes at once: "lost connection", then after
    # failures in a row the destination is suspended.
    sock = start(instance, "lost.example lost:\n",
                 main_cf="initial_destination_concurrency = 1\n"
                         "minimal_backoff_time = 60s\n"
                         "maximal_backoff_time = 60s\n")
    agent = FakeAgent(instance, "lost", "close")
    try:
        first = inject(sock, [("a@lost.example", "NEVER")])
        instance.wait_log(rf"warning: {first}: lost connection with lost")
        instance.wait_log(rf"{first}: to=<a@lost.example>, relay=none, .*"
                          r"status=deferred \(lost connection with lost\)")
        instance.wait_log(r"lost: destination lost.example is dead")
        second = inject(sock, [("b@lost.example", "NEVER")])
        instance.wait_log(rf"{second}: to=<b@lost.example>, relay=none, .*"
                          r"status=deferred \(delivery temporarily "
                          r"suspended: lost connection with lost\)")
    finally:
        agent.close()


def test_corrupt_file_goes_to_corrupt(instance):
    sock = start(instance)
    bad = instance.queue / "incoming" / "ABCDE12345"
    bad.write_bytes(b"V\0\0\0\x011")
    owner = instance.user or ("postino" if IS_ROOT else None)
    if owner:
        pw = pwd.getpwnam(owner)
        os.chown(bad, pw.pw_uid, pw.pw_gid)
    inject(sock, [("joe@example.org", "NEVER")])  # wakes qmgr
    instance.wait_log(r"warning: ABCDE12345: corrupt queue file: .*moved to "
                      r"corrupt/ABCDE12345")
    assert names(instance, "corrupt") == ["ABCDE12345"]


class FakeService(PrivateListener):
    """A socket private/NAME that speaks the record protocol: as a
    delivery agent (answer(request, recipients) gives one result dict per
    recipient) or as bounce (one record each way, "status=ok")."""

    def __init__(self, inst, name, answer=None):
        super().__init__(inst, name)
        self.answer = answer
        self.requests = []   # (envelope, [recipients]) or bounce records
        self.listen()

    def accepted(self, conn):
        with conn:
            conn.settimeout(10)
            self._one(conn)

    def _one(self, conn):
        first = text_reply(read_record(conn))
        if self.answer is None:
            self.requests.append(first)
            conn.sendall(encode([("status", "ok"), ("queue_id", "")]))
            return
        rcpts = []
        for _ in range(int(first["recipient_count"])):
            rcpts.append(text_reply(read_record(conn)))
        assert text_reply(read_record(conn)) == {"request": "end"}
        self.requests.append((first, rcpts))
        for i, result in enumerate(self.answer(first, rcpts)):
            conn.sendall(encode([("index", i)] + list(result.items())))
        conn.sendall(encode([("status", "done")]))



SENT = {"status": "sent", "dsn": "2.0.0", "text": "delivered",
        "relay": "fake"}
DEFER = {"status": "deferred", "dsn": "4.2.2", "text": "mailbox full",
         "relay": "fake"}


class FakeAgentTakingMore(PrivateListener):
    """A socket private/NAME that plays an agent which takes several
    requests a connection: each request is answered SENT after delay
    seconds, then status=done with more=more(connection, request) (1 or 0,
    both counted from 0); after more=0 it closes, leaving unread whatever
    qmgr sent behind.  conns: per connection, for each request its queue
    ID and whether the next request was already waiting in the socket when
    done went out."""

    def __init__(self, inst, name, more, delay=0.3):
        super().__init__(inst, name)
        self.more, self.delay = more, delay
        self.conns = []
        self.open_now = self.open_most = 0
        self.lock = threading.Lock()
        self.listen()

    def accepted(self, conn):
        with self.lock:
            self.conns.append([])
            index = len(self.conns) - 1
            self.open_now += 1
            self.open_most = max(self.open_most, self.open_now)
        threading.Thread(target=self._one, args=(conn, index),
                         daemon=True).start()

    def _one(self, conn, index):
        with conn:
            conn.settimeout(10)
            try:
                while self._request(conn, index):
                    pass
            except (OSError, EOFError):
                pass
        with self.lock:
            self.open_now -= 1

    def _request(self, conn, index):
        env = text_reply(read_record(conn))
        rcpts = [text_reply(read_record(conn))
                 for _ in range(int(env["recipient_count"]))]
        assert text_reply(read_record(conn)) == {"request": "end"}
        time.sleep(self.delay)
        conn.setblocking(False)
        try:
            waiting = len(conn.recv(1, socket.MSG_PEEK)) > 0
        except BlockingIOError:
            waiting = False
        conn.settimeout(10)
        more = self.more(index, len(self.conns[index]))
        self.conns[index].append((env["queue_id"], waiting))
        for i in range(len(rcpts)):
            conn.sendall(encode([("index", i)] + list(SENT.items())))
        conn.sendall(encode([("status", "done"), ("more", more)]))
        return more == 1


def test_delivery_request_and_partial_success(instance):
    sock = start(instance, "fake.example fake:nexthop.example\n",
                 main_cf="fake_destination_recipient_limit = 2\n")
    agent = FakeService(instance, "fake", lambda env, rcpts: [
        DEFER if r["address"].startswith("full") else SENT for r in rcpts])
    try:
        c = CleanupClient(sock)
        c.open(sender="a@example.com", dsn_envid="ENV1")
        c.rcpt("one@fake.example", orcpt="rfc822;one@fake.example",
               notify="NEVER")
        c.rcpt("full@fake.example", notify="NEVER")
        c.rcpt("two@fake.example", notify="NEVER")
        c.data(MESSAGE)
        qid = c.end()["queue_id"]
        c.close()
        wait_for(lambda: names(instance, "deferred") == [qid],
                 what="the message in deferred/")
    finally:
        agent.close()
    # Two requests (recipient limit 2), as docs/protocol.md says.
    assert sorted(len(r) for _, r in agent.requests) == [1, 2]
    env, rcpts = agent.requests[0]
    qf_path = instance.queue / "deferred" / qid
    info = queue_file_offsets(qf_path.read_bytes())
    assert env["queue_id"] == qid
    assert env["queue_file"] == f"active/{qid}"
    assert int(env["content_offset"]) == info["content_offset"]
    assert int(env["content_size"]) == info["content_size"]
    assert env["sender"] == "a@example.com"
    assert env["nexthop"] == "nexthop.example"
    assert env["arrival_time"] == info["arrival_time"]
    assert float(env["arrival_time"]) <= float(env["active_time"]) <= \
        float(env["dispatch_time"])
    assert env["dsn_envid"] == "ENV1"
    every = [r for _, rs in agent.requests for r in rs]
    assert sorted(r["address"] for r in every) == \
        ["full@fake.example", "one@fake.example", "two@fake.example"]
    one = [r for r in every if r["address"] == "one@fake.example"][0]
    assert one["orcpt"] == "rfc822;one@fake.example"
    assert one["notify"] == "NEVER"
    assert sorted(int(r["offset"]) for r in every) == \
        recipient_offsets(qf_path.read_bytes())
    # The delivered recipients are done (D); the deferred one is left.
    assert QueueFile(qf_path).addresses == ["full@fake.example"]
    entries = log_entries(instance.queue / "defer" / qid)
    assert [(e["recipient"], e["status"], e["text"]) for e in entries] == \
        [("full@fake.example", "4.2.2", "mailbox full")]


def test_success_and_failure_notices(instance):
    sock = start(instance, "fake.example fake:\n"
                           "gone.example error:5.1.2 gone\n")
    agent = FakeService(instance, "fake", lambda env, rcpts: [SENT] * len(rcpts))
    bounce = FakeService(instance, "bounce")
    try:
        qid = inject(sock, [("joe@fake.example", "SUCCESS"),
                            "ann@gone.example"])
        instance.wait_log(rf"{qid}: removed")
    finally:
        agent.close()
        bounce.close()
    kinds = sorted((r["kind"], r["log"]) for r in bounce.requests)
    assert kinds == [("failure", f"bounce/{qid}"),
                     ("success", f"trace/{qid}")]
    assert all(r["request"] == "notify" and r["queue_id"] == qid and
               r["queue_file"] == f"active/{qid}" for r in bounce.requests)
    for sub in ("bounce", "trace", "defer", "active", "deferred"):
        assert names(instance, sub) == [], sub


def test_delay_warning_once(instance):
    sock = start(instance, "slow.example retry:4.4.1 try later\n",
                 main_cf="delay_warning_time = 2s\n")
    bounce = FakeService(instance, "bounce")
    try:
        qid = inject(sock, ["joe@slow.example"])
        wait_for(lambda: bounce.requests, timeout=20, what="a delay notice")
        time.sleep(4)
    finally:
        bounce.close()
    assert [(r["kind"], r["log"]) for r in bounce.requests] == \
        [("delay", f"defer/{qid}")]
    entries = log_entries(instance.queue / "defer" / qid)
    assert any(e["recipient"] == "" and e["action"] == "warned"
               for e in entries)


def test_destination_failure_suspends_the_destination(instance):
    sock = start(instance, "down.example fake:\n",
                 main_cf="initial_destination_concurrency = 1\n"
                         "minimal_backoff_time = 60s\n"
                         "maximal_backoff_time = 60s\n")
    refused = dict(DEFER, dsn="4.4.1", text="connection refused",
                   destination_failure="1")
    agent = FakeService(instance, "fake",
                        lambda env, rcpts: [refused] * len(rcpts))
    try:
        first = inject(sock, [("a@down.example", "NEVER")])
        instance.wait_log(r"fake: destination down.example is dead for 60s: "
                          r"connection refused")
        second = inject(sock, [("b@down.example", "NEVER")])
        instance.wait_log(rf"{second}: to=<b@down.example>, relay=none, .*"
                          r"status=deferred \(delivery temporarily "
                          r"suspended: connection refused\)")
        assert len(agent.requests) == 1
        assert first != second
        # "F" (postino flush) forgets it: the next attempt reaches the agent.
        assert instance.postino("flush").returncode == 0
        wait_for(lambda: len(agent.requests) >= 2, what="a new attempt")
    finally:
        agent.close()


def test_error_and_retry_texts(instance):
    sock = start(instance, "a.example error:4.7.1 policy says no\n"
                           "b.example retry:5.1.1 odd code\n"
                           "c.example retry:\n"
                           "d.example error:not a code\n")
    qid = inject(sock, [("x@a.example", "NEVER"), ("x@b.example", "NEVER"),
                        ("x@c.example", "NEVER"), ("x@d.example", "NEVER")])
    for pattern in (r"x@a.example>.*dsn=5.7.1, status=bounced "
                    r"\(policy says no\)",
                    r"x@b.example>.*dsn=4.1.1, status=deferred \(odd code\)",
                    r"x@c.example>.*dsn=4.0.0, status=deferred \(mail for "
                    r"this destination is delayed\)",
                    r"x@d.example>.*dsn=5.0.0, status=bounced \(not a "
                    r"code\)"):
        instance.wait_log(rf"{qid}: to=<{pattern}")
    wait_for(lambda: names(instance, "deferred") == [qid])
    assert sorted(QueueFile(instance.queue / "deferred" / qid).addresses) \
        == ["x@b.example", "x@c.example"]


def test_recipient_limit_one_and_active_limit(instance):
    sock = start(instance, "fake.example fake:\n",
                 main_cf="fake_destination_recipient_limit = 1\n"
                         "qmgr_message_active_limit = 1\n")
    agent = FakeService(instance, "fake",
                        lambda env, rcpts: [SENT] * len(rcpts))
    try:
        ids = [inject(sock, [(f"u{i}@fake.example", "NEVER"),
                             (f"v{i}@fake.example", "NEVER")])
               for i in range(4)]
        for qid in ids:
            instance.wait_log(rf"{qid}: removed", timeout=20)
    finally:
        agent.close()
    assert len(agent.requests) == 8
    assert all(len(rcpts) == 1 for _, rcpts in agent.requests)
    assert "unused parameter" not in instance.log()


def test_hold_is_left_alone(instance):
    sock = start(instance, "gone.example error:\n")
    held = instance.queue / "hold" / "ABCDE12345"
    held.write_bytes(b"not even a queue file")
    qid = inject(sock, [("joe@gone.example", "NEVER")])
    instance.wait_log(rf"{qid}: removed")
    assert instance.postino("flush").returncode == 0
    time.sleep(1)
    assert held.read_bytes() == b"not even a queue file"
    assert "ABCDE12345" not in instance.log()


def test_malformed_reply_defers(instance):
    sock = start(instance, "fake.example fake:\n")
    agent = FakeService(instance, "fake", lambda env, rcpts: [
        {"status": "delivered-ish", "dsn": "2.0.0"}] * len(rcpts))
    try:
        qid = inject(sock, [("joe@fake.example", "NEVER")])
        instance.wait_log(rf"warning: {qid}: malformed reply from fake")
        instance.wait_log(rf"{qid}: to=<joe@fake.example>, relay=none, .*"
                          r"dsn=4.3.0, status=deferred \(lost connection "
                          r"with fake\)")
    finally:
        agent.close()


def test_silent_trigger_client_blocks_nothing(instance):
    sock = start(instance, "gone.example error:\n")
    first = inject(sock, [("a@gone.example", "NEVER")])
    instance.wait_log(rf"{first}: removed")
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(str(instance.queue / "public" / "qmgr"))
    try:
        qid = inject(sock, [("joe@gone.example", "NEVER")])
        instance.wait_log(rf"{qid}: removed", timeout=4)
        # qmgr drops the silent client after a few seconds.
        silent.settimeout(10)
        assert silent.recv(1) == b""
    finally:
        silent.close()


def test_reload_restarts_qmgr_which_resumes(instance):
    sock = start(instance, "hang.example hang:\n")
    agent = FakeAgent(instance, "hang", "backlog")
    try:
        qid = inject(sock, [("u@hang.example", "NEVER")])
        wait_for(lambda: names(instance, "active") == [qid])
        [old] = instance.pids_of("qmgr")
        write_transport(instance, "hang.example error:\n")
        assert instance.postino("reload").returncode == 0
        # The master's wakeup after the reload starts a new qmgr at once.
        instance.wait_log(r"moved 1 messages from active back to incoming")
        instance.wait_log(rf"{qid}: removed")
        assert old not in instance.pids_of("qmgr")
    finally:
        agent.close()


def test_smtpd_takes_address_literals_of_this_host_as_local(instance):
    """smtpd classifies recipients with qmgr's resolver: [127.0.0.1] is
    this host, so alice@[127.0.0.1] is a local user, not a relay."""
    from smtpd_instance import RawSmtp, start_smtpd
    ports = start_smtpd(instance, "mynetworks = 192.0.2.0/24\n")
    c = RawSmtp(ports.smtp)
    c.send(b"EHLO client.example\r\n")
    assert c.reply()[0] == 250
    c.send(b"MAIL FROM:<a@example.org>\r\n")
    assert c.reply()[0] == 250
    c.send(b"RCPT TO:<alice@[127.0.0.1]>\r\n")
    assert c.reply()[0] == 250
    c.send(b"RCPT TO:<nobody@[127.0.0.1]>\r\n")
    code, lines = c.reply()
    assert code == 550 and "5.1.1" in lines[0], lines
    c.send(b"RCPT TO:<alice@[192.0.2.99]>\r\n")
    code, lines = c.reply()
    assert code == 554 and "Relay access denied" in lines[0], lines


def test_many_messages_all_finish(instance):
    sock = start(instance, "".join(f"d{i}.example error:5.1.{i} gone\n"
                                   for i in range(5)))
    ids = [inject(sock, [(f"u{n}@d{n % 5}.example", "NEVER"),
                         (f"v{n}@d{(n + 1) % 5}.example", "NEVER")])
           for n in range(150)]
    instance.wait_log(r": removed", count=len(ids), timeout=60)
    for sub in ("incoming", "active", "deferred", "bounce", "defer"):
        assert names(instance, sub) == [], sub
    assert len(re.findall(r"status=bounced", instance.log())) == 300


def test_bad_transport_name_defers(instance):
    sock = start(instance, "odd.example ../../public/pickup:\n")
    qid = inject(sock, [("joe@odd.example", "NEVER")])
    instance.wait_log(rf"warning: {qid}: to=<joe@odd.example>: bad transport "
                      r"name")
    instance.wait_log(rf"{qid}: to=<joe@odd.example>, relay=none, .*"
                      r"dsn=4.3.5, status=deferred \(mail transport "
                      r"unavailable\)")


def test_transport_table_error_defers(instance):
    sock = start(instance, "",
                 main_cf=f"transport_maps = hash:{instance.etc}/missing\n")
    qid = inject(sock, [("joe@example.org", "NEVER")])
    instance.wait_log(rf"warning: {qid}: to=<joe@example.org>: address "
                      r"resolver failure: transport_maps")
    instance.wait_log(rf"{qid}: to=<joe@example.org>, relay=none, .*"
                      r"dsn=4.3.0, status=deferred \(address resolver "
                      r"failure\)")
    wait_for(lambda: names(instance, "deferred") == [qid])


def test_message_deleted_during_delivery_is_dropped_quietly(instance):
    sock = start(instance, "hang.example hang:\n",
                 main_cf="ipc_timeout = 2s\n")
    agent = FakeAgent(instance, "hang", "hold")
    try:
        qid = inject(sock, [("u@hang.example", "NEVER")])
        # In delivery: the agent holds the request.  (Seeing the file in
        # active/ is not enough: qmgr may not have opened it yet.)
        wait_for(lambda: len(agent.held) == 1, what="the delivery request")
        assert names(instance, "active") == [qid]
        os.unlink(instance.queue / "active" / qid)
        instance.wait_log(rf"{qid}: to=<u@hang.example>, relay=none, .*"
                          r"status=deferred \(delivery agent timed out\)")
        time.sleep(0.5)
    finally:
        agent.close()
    for sub in ("incoming", "active", "deferred", "defer", "corrupt"):
        assert names(instance, sub) == [], sub
    assert not re.search(rf"warning: {qid}: (rename|remove|open)",
                         instance.log())


def test_bounce_queue_lifetime_for_the_null_sender(instance):
    sock = start(instance, "slow.example retry:4.4.1 try later\n",
                 main_cf="bounce_queue_lifetime = 0\n")
    bounce = inject(sock, [("joe@slow.example", "NEVER")], sender="")
    normal = inject(sock, [("ann@slow.example", "NEVER")])
    instance.wait_log(rf"{bounce}: from=<>, status=expired, returned to "
                      r"sender")
    instance.wait_log(rf"{bounce}: removed")
    instance.wait_log(rf"{normal}: to=<ann@slow.example>.*status=deferred",
                      count=2)
    assert f"{normal}: from=<a@example.com>, status=expired" not in \
        instance.log()


def test_mailq_shows_the_deferral_reason(instance):
    sock = start(instance, "slow.example retry:4.4.1 try later\n",
                 main_cf="minimal_backoff_time = 3600s\n"
                         "maximal_backoff_time = 3600s\n",
                 extra_master=f"showq unix n - n - - {BIN}/showq\n")
    qid = inject(sock, [("joe@slow.example", "NEVER"),
                        ("ann@slow.example", "NEVER")])
    wait_for(lambda: names(instance, "deferred") == [qid])
    listing = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listing.settimeout(10)
    listing.connect(str(instance.queue / "public" / "showq"))
    text = b""
    while chunk := listing.recv(65536):
        text += chunk
    listing.close()
    lines = text.decode().splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith(qid)][0]
    assert lines[at + 1] == "(try later)"
    assert sorted(line.strip() for line in lines[at + 2:at + 4]) == \
        ["ann@slow.example", "joe@slow.example"]


def test_destination_concurrency_limit(instance):
    sock = start(instance, "one.example hang:\ntwo.example hang:\n",
                 main_cf="hang_destination_concurrency_limit = 2\n"
                         "ipc_timeout = 30s\n")
    agent = FakeAgent(instance, "hang", "hold")
    try:
        for i in range(5):
            inject(sock, [(f"u{i}@one.example", "NEVER")])
        inject(sock, [("v@two.example", "NEVER")])
        # two for one.example (its limit), one for two.example.
        wait_for(lambda: len(agent.held) >= 3, what="three connections")
        time.sleep(1)
        assert len(agent.held) == 3
        assert len(names(instance, "active")) == 6
    finally:
        agent.close()


def through_agent_taking_more(inst, count, more):
    """count messages, one recipient each, through a FakeAgentTakingMore at
    concurrency 1, each until it is removed: their IDs and the agent."""
    sock = start(inst, "fake.example fake:\n",
                 main_cf="fake_destination_concurrency_limit = 1\n")
    agent = FakeAgentTakingMore(inst, "fake", more)
    try:
        ids = [inject(sock, [(f"u{i}@fake.example", "NEVER")])
               for i in range(count)]
        for qid in ids:
            inst.wait_log(rf"{qid}: removed", timeout=20)
    finally:
        agent.close()
    assert agent.open_most == 1
    assert not re.search(r"postino/qmgr\[\d+\]: (warning|error|fatal)",
                         inst.log()), inst.log()
    return ids, agent


def test_next_request_waits_behind_the_one_in_progress(instance):
    # One connection at a time, and on it the next request is queued
    # behind the one the agent works on once the agent has said it takes
    # more (more=1 after the first).
    ids, agent = through_agent_taking_more(instance, 5, lambda c, r: 1)
    assert len(agent.conns) == 1
    assert sorted(qid for qid, _ in agent.conns[0]) == sorted(ids)
    assert [waiting for _, waiting in agent.conns[0]] == \
        [False, True, True, True, False]


def test_request_behind_the_last_one_goes_on_a_new_connection(instance):
    # The agent says more=0 with its second request while qmgr has the
    # third queued behind it: that one was never begun, so it goes on a
    # new connection at once, neither deferred nor counted as a failure.
    ids, agent = through_agent_taking_more(
        instance, 3, lambda c, r: 0 if r == 1 else 1)
    assert [len(c) for c in agent.conns] == [2, 1]
    assert agent.conns[0][1][1], "the third request was not queued"
    assert sorted(qid for c in agent.conns for qid, _ in c) == sorted(ids)
    assert "status=deferred" not in instance.log()
