"""anvil: per-client connection counts and rates, over its real socket.

The tests speak the record protocol (docs/protocol.md) with a small
encoder and decoder of their own, and use tests/services/anvil_probe,
which drives the C client library smtpd uses.
"""
import select
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import TEST_BIN, wait_until

RECORD_MAX = 4096


# -- the record protocol, minimal ------------------------------------------
def encode(**attrs):
    body = b"\x01"
    for name, value in attrs.items():
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str):
            value = value.encode()
        body += bytes([len(name)]) + name.encode()
        body += struct.pack(">I", len(value)) + value
    return struct.pack(">I", len(body)) + body


def decode(body):
    assert body[0] == 1, f"version {body[0]}"
    attrs, pos = {}, 1
    while pos < len(body):
        n = body[pos]
        name = body[pos + 1:pos + 1 + n].decode()
        pos += 1 + n
        (vlen,) = struct.unpack(">I", body[pos:pos + 4])
        pos += 4
        attrs[name] = body[pos:pos + vlen].decode()
        pos += vlen
    return attrs


class Session:
    """One connection to anvil, as one smtpd session holds it."""

    def __init__(self, inst, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(inst.queue / "private" / "anvil"))
        self.pending = b""

    def send(self, **attrs):
        self.sock.sendall(encode(**attrs))

    def _read(self, n):
        while len(self.pending) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("anvil closed the connection")
            self.pending += data
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def reply(self):
        (length,) = struct.unpack(">I", self._read(4))
        assert length <= RECORD_MAX
        return decode(self._read(length))

    def ask(self, **attrs):
        self.send(**attrs)
        return self.reply()

    def connect(self, address="127.0.0.1", service="smtp"):
        r = self.ask(request="connect", service=service,
                     client_address=address)
        assert r["status"] == "ok", r
        return int(r["count"]), int(r["rate"])

    def closed_by_peer(self, timeout=5):
        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready) and self.sock.recv(1) == b""

    def close(self):
        self.sock.close()


def start_anvil(inst, extra=""):
    inst.write_main_cf(extra)
    inst.write_master_cf("anvil unix - - n - 1 anvil\n")
    inst.start()
    path = inst.queue / "private" / "anvil"
    wait_until(path.exists, 10, "the anvil socket")


def probe(inst, *steps, address="127.0.0.1", **kwargs):
    return subprocess.Popen(
        [str(TEST_BIN / "anvil_probe"), str(inst.queue / "private" / "anvil"),
         "smtp", address, *steps], stdout=subprocess.PIPE,
        stdin=subprocess.PIPE, text=True, **kwargs)


def test_count_follows_open_sessions_and_a_closed_socket_counts_as_gone(
        instance):
    start_anvil(instance)
    sessions = [Session(instance) for _ in range(3)]
    assert [s.connect() for s in sessions] == [(1, 1), (2, 2), (3, 3)]
    # Other clients and other services are counted apart.
    other = Session(instance)
    assert other.connect(address="127.0.0.2") == (1, 1)
    sub = Session(instance)
    assert sub.connect(service="submission") == (1, 1)

    # A session that ends without a word (a smtpd that crashed) is gone.
    sessions[0].close()
    time.sleep(0.1)
    again = Session(instance)
    assert again.connect() == (3, 4)
    # A polite disconnect: anvil closes its side and the count drops.
    sessions[1].send(request="disconnect")
    assert sessions[1].closed_by_peer()
    last = Session(instance)
    assert last.connect() == (3, 5)
    for s in sessions[1:] + [other, sub, again, last]:
        s.close()


def test_message_and_recipient_rates_within_the_time_unit(instance):
    start_anvil(instance, "anvil_rate_time_unit = 2s\n")
    s = Session(instance)
    assert s.connect() == (1, 1)
    start = time.monotonic()
    rates = [int(s.ask(request="message")["rate"]) for _ in range(3)]
    assert rates == [1, 2, 3]
    assert [int(s.ask(request="recipient")["rate"])
            for _ in range(4)] == [1, 2, 3, 4]
    # A second session of the same client shares its rates.
    t = Session(instance)
    assert t.connect() == (2, 2)
    assert int(t.ask(request="message")["rate"]) == 4
    # After the unit the window starts again.
    time.sleep(max(0.0, start + 3.1 - time.monotonic()))
    assert int(s.ask(request="message")["rate"]) == 1
    u = Session(instance)
    assert u.connect() == (3, 1)
    for x in (s, t, u):
        x.close()


def test_many_clients_at_once_and_a_slow_one_blocks_nobody(instance):
    start_anvil(instance)
    sessions = [Session(instance) for _ in range(200)]
    for s in sessions:
        s.send(request="connect", service="smtp", client_address="127.0.0.9")
    counts = sorted(int(s.reply()["count"]) for s in sessions)
    assert counts == list(range(1, 201))

    # A client that sends and never reads its replies is dropped; the
    # others are answered meanwhile.
    slow = Session(instance)
    assert slow.connect(address="127.0.0.10") == (1, 1)
    slow.sock.setblocking(False)
    request = encode(request="message")
    sent = 0
    deadline = time.monotonic() + 20
    dropped = False
    while time.monotonic() < deadline:
        try:
            sent += slow.sock.send(request * 256)
        except BlockingIOError:
            # anvil is not reading: its output to us is full.  Others
            # still get their answers.
            assert sessions[0].ask(request="message")["status"] == "ok"
            select.select([], [slow.sock], [], 0.1)
        except (BrokenPipeError, ConnectionResetError):
            dropped = True
            break
    assert dropped, f"slow client not dropped after {sent} bytes"
    instance.wait_log(r"client does not read its replies; dropping it")
    assert int(sessions[0].ask(request="message")["rate"]) >= 1
    for s in sessions:
        s.close()
    time.sleep(0.2)
    fresh = Session(instance)
    assert fresh.connect(address="127.0.0.9") == (1, 201)
    fresh.close()


def test_bad_requests_get_an_answer_or_the_door(instance):
    start_anvil(instance)
    s = Session(instance)
    r = s.ask(request="message")
    assert r == {"status": "fail", "reason": "not connected"}
    r = s.ask(request="frobnicate")
    assert r == {"status": "fail", "reason": "unknown request"}
    r = s.ask(request="connect", service="smtp", client_address="a b")
    assert r["status"] == "fail"
    assert s.connect() == (1, 1)
    assert s.ask(request="connect", service="smtp",
                 client_address="127.0.0.1")["reason"] == "already connected"

    big = Session(instance)
    big.sock.sendall(struct.pack(">I", 1 << 20) + b"\x01")
    assert big.closed_by_peer()
    instance.wait_log(r"client sent a record of 1048576 bytes \(limit 4096\)")
    bad = Session(instance)
    bad.sock.sendall(struct.pack(">I", 2) + b"\x07\x00")
    assert bad.closed_by_peer()
    instance.wait_log(r"client sent a bad record: unsupported record version")
    # anvil is still there and still counting.
    other = Session(instance)
    assert other.connect() == (2, 2)
    for x in (s, big, bad, other):
        x.close()


def test_statistics_are_logged_like_postfix(instance):
    start_anvil(instance, "anvil_status_update_time = 1s\n")
    sessions = [Session(instance) for _ in range(3)]
    for s in sessions:
        s.connect()
    sessions[0].ask(request="recipient")
    instance.wait_log(r"postino/anvil\[\d+\]: statistics: max connection "
                      r"count 3 for \(smtp:127\.0\.0\.1\) at \w{3} [ \d]\d "
                      r"\d\d:\d\d:\d\d")
    instance.wait_log(r"statistics: max connection rate 3/60s for "
                      r"\(smtp:127\.0\.0\.1\) at ")
    instance.wait_log(r"statistics: max recipient rate 1/60s for ")
    instance.wait_log(r"statistics: max cache size 1 at ")
    for s in sessions:
        s.close()


def test_c_client_library_and_a_killed_session(instance):
    start_anvil(instance)
    first = probe(instance, "hold")
    assert first.stdout.readline().strip() == "count=1 rate=1"
    assert first.stdout.readline().strip() == "holding"
    second = subprocess.run(
        [str(TEST_BIN / "anvil_probe"),
         str(instance.queue / "private" / "anvil"), "smtp", "127.0.0.1",
         "message", "recipient", "recipient"],
        capture_output=True, text=True, timeout=10)
    assert second.returncode == 0, second.stdout
    assert second.stdout.splitlines() == [
        "count=2 rate=2", "message rate=1", "recipient rate=1",
        "recipient rate=2"]
    # The holding session dies without a word: its count goes with it.
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    first.stdout.close()
    first.stdin.close()
    time.sleep(0.1)
    third = subprocess.run(
        [str(TEST_BIN / "anvil_probe"),
         str(instance.queue / "private" / "anvil"), "smtp", "127.0.0.1"],
        capture_output=True, text=True, timeout=10)
    assert third.stdout.splitlines() == ["count=1 rate=3"]


def test_c_client_without_anvil_fails_cleanly(tmp_path):
    result = subprocess.run(
        [str(TEST_BIN / "anvil_probe"), str(tmp_path / "no-such-socket"),
         "smtp", "127.0.0.1"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert result.stdout.startswith("error: connect to ")
    assert "No such file or directory" in result.stdout



def wait_for(predicate, what, timeout=10):
    wait_until(predicate, timeout, what)


def test_one_process_that_leaves_when_idle_and_not_before(plain_instance):
    inst = plain_instance
    inst.write_master_cf("anvil unix - - n - 1 anvil -o max_idle=1s\n")
    inst.start()
    s = Session(inst)
    assert s.connect() == (1, 1)
    others = [Session(inst) for _ in range(5)]
    assert [o.connect() for o in others] == [(n, n) for n in range(2, 7)]
    [pid] = inst.pids_of("anvil")
    time.sleep(1.5)  # longer than max_idle, with sessions open
    assert inst.pids_of("anvil") == [pid]
    assert int(s.ask(request="message")["rate"]) == 1
    for x in [s] + others:
        x.close()
    wait_for(lambda: not inst.pids_of("anvil"), "idle anvil to exit")
    assert "throttling" not in inst.log()
    assert f"pid {pid}" not in inst.log()  # no exit status warning
    # The next session starts a new anvil, with a fresh table.
    again = Session(inst)
    assert again.connect() == (1, 1)
    again.close()


def test_reload_ends_the_sessions_of_the_old_anvil(plain_instance):
    inst = plain_instance
    start_anvil(inst)
    s = Session(inst)
    assert s.connect() == (1, 1)
    [old] = inst.pids_of("anvil")
    result = inst.postino("reload")
    assert result.returncode == 0, result.stderr
    # The old anvil exits at once; its clients see the connection close
    # and go on without limits (smtpd logs a warning).
    assert s.closed_by_peer()
    wait_for(lambda: old not in inst.pids_of("anvil"), "old anvil to exit")
    # On its way out it logged what it had seen.
    inst.wait_log(rf"postino/anvil\[{old}\]: statistics: max connection "
                  r"count 1 for \(smtp:127\.0\.0\.1\)")
    fresh = Session(inst)
    assert fresh.connect() == (1, 1)
    assert old not in inst.pids_of("anvil")
    for x in (s, fresh):
        x.close()
