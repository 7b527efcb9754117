"""pop3d with real clients (poplib, fetchmail, mpop, openssl s_client) and
raw sockets for hostile sessions, against a real instance; what the
clients download is compared with the Maildir, and the Maildir after the
session with what POP3 says must happen to it."""
import base64
import os
import poplib
import pwd
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import BIN, IS_ROOT
from pop3d_instance import (DOMAIN, PASSWORD, Maildir, RawPop, client_tls,
                            start_pop3d, tls_login, uidl_map)

DEMO = f"demo@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
ONE = b"Subject: one\nFrom: <a@example.org>\n\nfirst body\n"
DOTS = b"Subject: dots\n\n.starts with a dot\n..two dots\n.\nend\n"


def transfer_form(data):
    """What RFC 1939 says a message looks like on the wire, unstuffed:
    CRLF line ends; and its size."""
    text = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text, len(text)


def poplib_stls(pop):
    c = poplib.POP3("127.0.0.1", pop.port, timeout=10)
    c.stls(context=client_tls())
    c.user(DEMO)
    c.pass_(PASSWORD)
    return c


# ---- clients -----------------------------------------------------------

def test_poplib_over_stls_and_implicit_tls(instance):
    pop = start_pop3d(instance)
    box = pop.maildir("demo")
    box.deliver(ONE)
    box.deliver(DOTS)
    c = poplib_stls(pop)
    assert c.stat() == (2, transfer_form(ONE)[1] + transfer_form(DOTS)[1])
    resp, lines, octets = c.retr(2)
    assert b"\r\n".join(lines) + b"\r\n" == transfer_form(DOTS)[0]
    assert c.quit().startswith(b"+OK")

    s = poplib.POP3_SSL("127.0.0.1", pop.tls_port, context=client_tls(),
                        timeout=10)
    s.user(DEMO)
    s.pass_(PASSWORD)
    assert s.stat()[0] == 2
    resp, lines, octets = s.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == transfer_form(ONE)[0]
    caps = s.capa()
    assert "TOP" in caps and "UIDL" in caps and "STLS" not in caps
    s.quit()
    instance.wait_log(rf"login: user=<{re.escape(DEMO)}>, method=USER, TLS",
                      count=2)


def fetchmail(pop, home, port, extra):
    rc = home / "fetchmailrc"
    out = home / "fetched"
    rc.write_text(
        f"poll 127.0.0.1 service {port} protocol pop3 timeout 20\n"
        f"  user '{DEMO}' password '{PASSWORD}' {extra}\n"
        f"  no sslcertck keep fetchall\n"
        f"  mda '/bin/sh -c \"cat >> {out}\"'\n")
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    result = subprocess.run(["fetchmail", "-N", "-f", str(rc)], env=env,
                            capture_output=True, text=True, timeout=60)
    return result, out


def start_with_two_messages(inst):
    pop = start_pop3d(inst)
    box = pop.maildir("demo")
    box.deliver(ONE)
    box.deliver(DOTS)
    return pop, box


@pytest.mark.parametrize("mode", ["stls", "implicit"])
def test_fetchmail_downloads(plain_instance, tmp_path, mode):
    pop, box = start_with_two_messages(plain_instance)
    if mode == "stls":
        result, out = fetchmail(pop, tmp_path, pop.port, "sslproto 'auto'")
    else:
        result, out = fetchmail(pop, tmp_path, pop.tls_port, "ssl")
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert b"first body" in data and b".starts with a dot" in data
    assert b"..two dots" in data
    assert len(box.files("cur")) == 2  # kept, seen
    plain_instance.wait_log(rf"login: user=<{re.escape(DEMO)}>, "
                            r"method=\w+, TLS")


@pytest.mark.parametrize("mode", ["stls", "implicit"])
def test_mpop_downloads(plain_instance, tmp_path, mode):
    pop, box = start_with_two_messages(plain_instance)
    mbox = tmp_path / "mbox"
    mbox.write_bytes(b"")
    port = pop.port if mode == "stls" else pop.tls_port
    config = tmp_path / "mpoprc"
    config.write_text(
        "account default\n"
        f"host 127.0.0.1\nport {port}\nuser {DEMO}\n"
        f"password {PASSWORD}\n"
        f"auth {'plain' if mode == 'stls' else 'user'}\n"
        "tls on\n"
        f"tls_starttls {'on' if mode == 'stls' else 'off'}\n"
        "tls_certcheck off\n"
        f"delivery mbox {mbox}\nkeep on\nonly_new off\n"
        f"uidls_file {tmp_path}/uidls\n")
    os.chmod(config, 0o600)
    result = subprocess.run(["mpop", "-C", str(config), "-q"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr + result.stdout
    data = mbox.read_bytes()
    assert data.count(b"\nFrom ") + data.startswith(b"From ") == 2
    assert b"first body" in data and b".starts with a dot" in data
    method = "PLAIN" if mode == "stls" else "USER"
    plain_instance.wait_log(rf"login: user=<{re.escape(DEMO)}>, "
                            rf"method={method}, TLS")


def test_openssl_s_client_sessions(plain_instance):
    pop = start_pop3d(plain_instance)
    pop.maildir("demo").deliver(ONE)
    script = (f"USER {DEMO}\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 1\r\n"
              "QUIT\r\n").encode()
    for args in (["-starttls", "pop3", "-connect", f"127.0.0.1:{pop.port}"],
                 ["-connect", f"127.0.0.1:{pop.tls_port}"]):
        result = subprocess.run(["openssl", "s_client", "-quiet", *args],
                                input=script, capture_output=True,
                                timeout=20)
        out = result.stdout
        assert b"+OK Logged in, maildrop has 1 messages" in out, result
        assert b"first body\r\n.\r\n" in out
        assert b"+OK Bye" in out


# ---- logins ------------------------------------------------------------

def test_plaintext_login_refused_without_tls(plain_instance):
    pop = start_pop3d(plain_instance)
    c = RawPop(pop.port)
    assert c.cmd(f"USER {DEMO}").startswith(
        "-ERR [AUTH] Plaintext authentication disallowed")
    plain = base64.b64encode(f"\0{DEMO}\0{PASSWORD}".encode()).decode()
    assert c.cmd(f"AUTH PLAIN {plain}").startswith("-ERR [AUTH]")
    assert c.cmd("PASS x").startswith("-ERR")
    assert c.cmd("QUIT") == "+OK Bye"


def test_plaintext_login_from_trusted_network(plain_instance):
    pop = start_pop3d(plain_instance,
                      "pop3d_trusted_networks = 127.0.0.0/8\n")
    pop.maildir("demo").deliver(ONE)
    c = poplib.POP3("127.0.0.1", pop.port, timeout=10)
    c.user(DEMO)
    c.pass_(PASSWORD)
    assert c.stat()[0] == 1
    c.quit()
    plain_instance.wait_log(rf"login: user=<{re.escape(DEMO)}>, "
                            r"method=USER\n")


def test_auth_plain_and_login(plain_instance):
    pop = start_pop3d(plain_instance)
    pop.maildir("demo").deliver(ONE)
    plain = base64.b64encode(f"\0{DEMO}\0{PASSWORD}".encode()).decode()
    c = RawPop(pop.port)
    c.starttls()
    assert c.cmd(f"AUTH PLAIN {plain}").startswith("+OK Logged in")
    assert c.cmd("STAT").startswith("+OK 1 ")
    c.cmd("QUIT")
    # PLAIN without an initial response, then LOGIN: challenges "+ ".
    c = RawPop(pop.tls_port, tls=True)
    assert c.cmd("AUTH PLAIN") == "+ "
    assert c.cmd("*").startswith("-ERR")
    assert c.cmd("AUTH LOGIN") == "+ " + base64.b64encode(
        b"Username:").decode()
    assert c.cmd(base64.b64encode(DEMO.encode()).decode()).startswith("+ ")
    assert c.cmd(base64.b64encode(PASSWORD.encode()).decode()).startswith(
        "+OK Logged in")
    c.cmd("QUIT")
    c = RawPop(pop.tls_port, tls=True)
    assert c.cmd("AUTH") == "+OK Mechanisms follow"
    assert c.multi() == [b"PLAIN", b"LOGIN"]
    assert c.cmd("AUTH CRAM-MD5").startswith("-ERR")
    assert c.cmd("AUTH PLAIN !!!").startswith("-ERR")
    bad = base64.b64encode(f"\0{DEMO}\0wrong".encode()).decode()
    assert c.cmd(f"AUTH PLAIN {bad}") == "-ERR [AUTH] Authentication failed"
    c.close()


def test_wrong_passwords_delay_grows_and_session_ends(plain_instance):
    pop = start_pop3d(plain_instance, "pop3d_auth_failure_delay = 1s\n"
                                      "pop3d_auth_failure_limit = 3\n")
    c = RawPop(pop.tls_port, tls=True)
    times = []
    for user in (DEMO, "nobody@example.test"):
        c.cmd(f"USER {user}")
        start = time.monotonic()
        assert c.cmd("PASS wrong") == "-ERR [AUTH] Authentication failed"
        times.append(time.monotonic() - start)
    assert 0.9 <= times[0] < 1.9 and 1.9 <= times[1] < 3.5, times
    c.cmd(f"USER {DEMO}")
    assert c.cmd("PASS wrong").startswith("-ERR [AUTH] Authentication "
                                          "failed; too many failures")
    assert c.closed()
    # The count is the client's, not the session's: a new session starts
    # where the last one ended.
    c = RawPop(pop.tls_port, tls=True)
    c.cmd(f"USER {DEMO}")
    start = time.monotonic()
    assert c.cmd("PASS wrong") == "-ERR [AUTH] Authentication failed"
    assert time.monotonic() - start >= 3.9
    c.close()
    plain_instance.wait_log(r"warning: localhost\[127\.0\.0\.1\]: USER "
                            r"authentication failed: user=<nobody@", count=1)
    assert "wrong" not in plain_instance.log()


def test_right_password_without_mailbox_entry(plain_instance):
    pop = start_pop3d(plain_instance)
    vmail = plain_instance.etc / "vmailbox"
    vmail.write_text(f"{BOB} {DOMAIN}/bob/\n")  # demo is gone
    c, reply = tls_login(pop)
    assert reply.startswith("-ERR [SYS/PERM]")
    c.close()


@pytest.mark.skipif(not IS_ROOT, reason="needs root to give files away")
def test_maildir_of_another_owner_is_not_opened(plain_instance):
    pop = start_pop3d(plain_instance)
    box = pop.maildir("demo")
    box.deliver(ONE)
    os.chown(box.path, 0, 0)
    c, reply = tls_login(pop)
    assert reply == "-ERR [SYS/TEMP] Cannot open the mailbox"
    assert c.closed()
    plain_instance.wait_log(r"error: user=<demo@example\.test>: open "
                            r".*/example\.test/demo/: Permission denied")


# ---- Maildir semantics -------------------------------------------------

def test_sizes_stuffing_and_top(plain_instance):
    pop = start_pop3d(plain_instance)
    box = pop.maildir("demo")
    crlf = b"Subject: crlf\r\n\r\nalready\r\ncrlf\r\n"
    nolf = b"Subject: no newline\n\nlast line"
    for m in (ONE, DOTS, crlf, nolf):
        box.deliver(m)
    c, reply = tls_login(pop)
    assert c.cmd("LIST") == "+OK Scan listing follows"
    sizes = [int(x.split()[1]) for x in c.multi()]
    assert sizes == [transfer_form(m)[1] for m in (ONE, DOTS, crlf, nolf)]
    c.send(b"RETR 2\r\n")
    assert c.line().startswith("+OK")
    raw = []
    while True:
        line = c.file.readline()
        raw.append(line)
        if line == b".\r\n":
            break
    assert raw == [b"Subject: dots\r\n", b"\r\n", b"..starts with a dot\r\n",
                   b"...two dots\r\n", b"..\r\n", b"end\r\n", b".\r\n"]
    assert c.cmd("RETR 4").startswith("+OK")
    assert c.multi() == [b"Subject: no newline", b"", b"last line"]
    assert c.cmd("TOP 2 0").startswith("+OK")
    assert c.multi() == [b"Subject: dots", b""]
    assert c.cmd("TOP 2 2").startswith("+OK")
    assert c.multi() == [b"Subject: dots", b"", b".starts with a dot",
                         b"..two dots"]
    assert c.cmd("LIST 3") == f"+OK 3 {transfer_form(crlf)[1]}"
    c.cmd("QUIT")


def test_dele_happens_at_quit_and_seen_moves_to_cur(instance):
    pop = start_pop3d(instance)
    box = pop.maildir("demo")
    names = [box.deliver(ONE), box.deliver(DOTS), box.deliver(ONE)]
    c, reply = tls_login(pop)
    assert reply == "+OK Logged in, maildrop has 3 messages"
    assert c.cmd("DELE 1") == "+OK Message 1 deleted"
    assert c.cmd("RETR 2").startswith("+OK")
    c.multi()
    size = transfer_form(ONE)[1] + transfer_form(DOTS)[1]
    assert c.cmd("STAT") == f"+OK 2 {size}"
    assert len(box.files("new")) == 3  # nothing changes before QUIT
    assert c.cmd("RSET") == "+OK Maildrop has 3 messages"
    assert c.cmd("DELE 3").startswith("+OK")
    assert c.cmd("QUIT") == "+OK Bye"
    assert c.closed()
    assert box.files("new") == []
    assert box.files("cur") == sorted([names[0] + ":2,", names[1] + ":2,S"])
    instance.wait_log(rf"user=<{re.escape(DEMO)}>: logout: retr=1, top=0, "
                      r"dele=1, kept=2")


def test_killed_session_deletes_nothing(plain_instance):
    pop, box = start_with_two_messages(plain_instance)
    for port, tls in ((pop.port, False), (pop.tls_port, True)):
        c = RawPop(port, tls=tls)
        if not tls:
            c.starttls()
        assert c.login().startswith("+OK")
        assert c.cmd("DELE 1").startswith("+OK")
        assert c.cmd("DELE 2").startswith("+OK")
        # A reset, not a QUIT.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          struct.pack("ii", 1, 0))
        c.close()
    plain_instance.wait_log(r"session ended without QUIT: nothing deleted",
                            count=2)
    assert len(box.files("new")) == 2
    c, reply = tls_login(pop)  # the lock went with the session
    assert reply == "+OK Logged in, maildrop has 2 messages"
    c.cmd("QUIT")


def test_killed_mailbox_process_deletes_nothing(instance):
    pop, box = start_with_two_messages(instance)
    c, reply = tls_login(pop)
    assert c.cmd("DELE 1").startswith("+OK")
    pid = int(instance.wait_log(r"pop3d\[(\d+)\]: user=<[^>]+>: maildrop "
                                r"has 2 messages")[0])
    os.kill(pid, signal.SIGKILL)
    assert c.closed()
    assert len(box.files("new")) == 2 and box.files("cur") == []
    c, reply = tls_login(pop)  # the lock died with the process
    assert reply == "+OK Logged in, maildrop has 2 messages"
    c.cmd("QUIT")


def test_second_session_gets_in_use(instance):
    pop = start_pop3d(instance)
    pop.maildir("demo").deliver(ONE)
    first, reply = tls_login(pop)
    assert reply.startswith("+OK")
    second = RawPop(pop.tls_port, tls=True)
    assert second.login() == ("-ERR [IN-USE] Mailbox is locked by another "
                              "session")
    assert second.closed()
    other, reply = tls_login(pop, BOB)  # another maildrop is not locked
    assert reply == "+OK Logged in, maildrop has 0 messages"
    other.cmd("QUIT")
    assert first.cmd("STAT").startswith("+OK 1 ")
    first.cmd("QUIT")
    third, reply = tls_login(pop)
    assert reply.startswith("+OK Logged in")
    third.cmd("QUIT")


def test_delivery_during_session_shows_next_time(plain_instance):
    pop = start_pop3d(plain_instance)
    box = pop.maildir("demo")
    box.deliver(ONE)
    c, reply = tls_login(pop)
    late = box.deliver(DOTS)
    assert c.cmd("STAT").startswith("+OK 1 ")
    assert c.cmd("DELE 1").startswith("+OK")
    assert c.cmd("QUIT") == "+OK Bye"
    c.closed()
    assert box.files("new") == [late]  # untouched
    assert (box.path / "new" / late).read_bytes() == DOTS
    c, reply = tls_login(pop)
    assert reply == "+OK Logged in, maildrop has 1 messages"
    assert c.cmd("RETR 1").startswith("+OK")
    assert b"..two dots" in c.multi()
    c.cmd("QUIT")


def test_uidl_stable_across_sessions_and_restart(plain_instance):
    pop = start_pop3d(plain_instance)
    box = pop.maildir("demo")
    for m in (ONE, DOTS, ONE):
        box.deliver(m)
    box.deliver(ONE, name="1800000000.weird name\u00e9,S=10")

    def uidls():
        c, reply = tls_login(pop)
        assert c.cmd("UIDL") == "+OK Unique-ID listing follows"
        u = uidl_map(c.multi())
        assert c.cmd("UIDL 2") == f"+OK 2 {u[2]}"
        assert c.cmd("RETR 1").startswith("+OK")
        c.multi()
        c.cmd("QUIT")
        c.closed()
        return u

    first = uidls()
    assert len(set(first.values())) == 4
    assert all(re.fullmatch(r"[\x21-\x7e]{1,70}", u) for u in first.values())
    assert len(box.files("cur")) == 4  # moved from new/: same UIDLs
    assert uidls() == first
    plain_instance.stop()
    plain_instance.start(wait=False)
    plain_instance.wait_log(r"daemon started", count=2, timeout=20)
    assert uidls() == first


# ---- bad input ---------------------------------------------------------

def test_commands_before_login(plain_instance):
    pop = start_pop3d(plain_instance)
    c = RawPop(pop.port)
    for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "UIDL", "TOP 1 1"):
        assert c.cmd(cmd) == "-ERR Not logged in", cmd
    assert c.cmd("FOO") == "-ERR Unknown command"
    assert c.cmd("") == "-ERR Unknown command"
    assert c.cmd("APOP demo 0123456789abcdef") == "-ERR APOP not supported"
    assert c.cmd("PASS secret") == ("-ERR No user name given (send USER "
                                    "first)")
    assert c.cmd("CAPA") == "+OK Capability list follows"
    caps = c.multi()
    for cap in (b"TOP", b"USER", b"UIDL", b"SASL PLAIN LOGIN", b"RESP-CODES",
                b"AUTH-RESP-CODE", b"PIPELINING", b"STLS",
                b"IMPLEMENTATION Postino"):
        assert cap in caps
    assert c.cmd("QUIT") == "+OK Bye"
    assert c.closed()


def test_bad_message_numbers(plain_instance):
    pop, box = start_with_two_messages(plain_instance)
    c, reply = tls_login(pop)
    for cmd, expect in (
            ("RETR 0", "-ERR No such message"),
            ("RETR 3", "-ERR No such message"),
            ("RETR 99999999999", "-ERR Invalid message number"),
            ("RETR -1", "-ERR Invalid message number"),
            ("RETR +1", "-ERR Invalid message number"),
            ("RETR one", "-ERR Invalid message number"),
            ("RETR", "-ERR Invalid message number"),
            ("LIST x", "-ERR Invalid message number"),
            ("UIDL 7", "-ERR No such message"),
            ("TOP 1", "-ERR Usage: TOP message lines"),
            ("TOP 1 x", "-ERR Invalid line count"),
            ("DELE 1", "+OK Message 1 deleted"),
            ("DELE 1", "-ERR Message 1 already deleted"),
            ("RETR 1", "-ERR Message 1 already deleted"),
            ("LIST 1", "-ERR Message 1 already deleted"),
            ("USER x", "-ERR Already logged in"),
            ("STLS", "-ERR Already logged in"),
            ("BLAH", "-ERR Unknown command"),
            ("NOOP", "+OK")):
        assert c.cmd(cmd) == expect, cmd
    assert c.cmd("LIST") == "+OK Scan listing follows"
    assert [x.split()[0] for x in c.multi()] == [b"2"]
    assert c.cmd("QUIT") == "+OK Bye"
    assert box.files("new") == [] and len(box.files("cur")) == 1


def test_overlong_lines_and_nul_bytes(plain_instance):
    pop = start_pop3d(plain_instance)
    pop.maildir("demo").deliver(ONE)
    c = RawPop(pop.port)
    c.send(b"USER " + b"x" * 5000 + b"\r\n")
    assert c.line() == "-ERR line too long"
    c.send(b"CA\0PA\r\n")
    assert c.line() == "-ERR NUL byte in command"
    c.starttls()
    assert c.login().startswith("+OK")
    c.send(b"STAT" + b" " * 300 + b"\r\n")
    assert c.line() == "-ERR line too long"
    c.send(b"ST\0AT\r\n")
    assert c.line() == "-ERR NUL byte in command"
    assert c.cmd("STAT").startswith("+OK 1 ")
    c.cmd("QUIT")


def test_too_many_errors_end_the_session(plain_instance):
    pop = start_pop3d(plain_instance)
    c = RawPop(pop.port)
    c.send(b"FOO\r\n" * 60)
    replies = [c.line() for _ in range(51)]
    assert replies[-1] == "-ERR Too many errors"
    assert c.closed()


def test_pipelined_burst(plain_instance):
    pop = start_pop3d(plain_instance)
    box = pop.maildir("demo")
    for _ in range(20):
        box.deliver(ONE)
    c = RawPop(pop.tls_port, tls=True)
    burst = (f"CAPA\r\nUSER {DEMO}\r\nPASS {PASSWORD}\r\nSTAT\r\n" +
             "".join(f"RETR {i}\r\nDELE {i}\r\n" for i in range(1, 21)) +
             "LIST\r\nQUIT\r\n").encode()
    c.send(burst)
    assert c.line() == "+OK Capability list follows"
    c.multi()
    assert c.line().startswith("+OK")  # USER
    assert c.line() == "+OK Logged in, maildrop has 20 messages"
    assert c.line().startswith("+OK 20 ")
    for i in range(1, 21):
        assert c.line().startswith("+OK")
        assert b"first body" in c.multi()
        assert c.line() == f"+OK Message {i} deleted"
    assert c.line() == "+OK Scan listing follows"
    assert c.multi() == []
    assert c.line() == "+OK Bye"
    assert c.closed()
    assert box.files("new") == [] and box.files("cur") == []


def test_plaintext_injected_after_stls_is_discarded(plain_instance):
    pop = start_pop3d(plain_instance)
    c = RawPop(pop.port)
    c.send(f"STLS\r\nUSER {DEMO}\r\nPASS {PASSWORD}\r\n".encode())
    assert c.line() == "+OK Begin TLS negotiation"
    c.sock = client_tls().wrap_socket(c.sock)
    c.file = c.sock.makefile("rb")
    # The injected login was thrown away: the session is still unlogged.
    assert c.cmd("STAT") == "-ERR Not logged in"
    assert c.cmd("STLS") == "-ERR Command not permitted when TLS active"
    assert c.cmd("CAPA").startswith("+OK")
    assert b"STLS" not in c.multi()
    plain_instance.wait_log(r"discarding \d+ bytes sent before the TLS "
                            r"handshake")
    c.cmd("QUIT")


# ---- privilege ---------------------------------------------------------

def proc_status(pid):
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                fields[k] = v.split()
    except OSError:
        return None
    return fields


@pytest.mark.skipif(not IS_ROOT, reason="needs root to switch users")
def test_processes_users_and_capabilities(instance):
    pop = start_pop3d(instance)
    pop.maildir("demo").deliver(ONE)
    c, reply = tls_login(pop)
    assert reply.startswith("+OK")
    time.sleep(0.2)
    seen = []
    for pid in instance.processes():
        st = proc_status(pid)
        if st is None or st["Name"][0] != "pop3d":
            continue
        seen.append((int(st["Uid"][1]), int(st["CapEff"][0], 16),
                     int(st["CapPrm"][0], 16), st["NoNewPrivs"][0]))
    c.cmd("QUIT")
    owner = 65534 if instance.user is None else instance.uid
    mailbox = [s for s in seen if s[0] == owner]
    assert len(seen) == 3, seen  # parent, login (proxy), mailbox
    assert all(s[0] != 0 for s in seen), seen
    assert all(s[3] == "1" for s in seen), seen
    if instance.user is None:
        setid = (1 << 6) | (1 << 7)  # CAP_SETGID, CAP_SETUID
        with_caps = [s for s in seen if s[1] or s[2]]
        assert len(with_caps) == 1 and with_caps[0][1] == setid, seen
        assert len(mailbox) == 1 and mailbox[0][1] == 0, seen
    else:
        assert all(s[1] == 0 and s[2] == 0 for s in seen), seen


def test_idle_session_times_out_and_deletes_nothing(plain_instance):
    pop = start_pop3d(plain_instance, "pop3d_timeout = 2s\n")
    box = pop.maildir("demo")
    box.deliver(ONE)
    c, reply = tls_login(pop)
    assert c.cmd("DELE 1").startswith("+OK")
    c.send(b"NO")  # a command that never ends
    start = time.monotonic()
    assert c.line() == "-ERR autologout timer expired"
    assert 1.5 < time.monotonic() - start < 6
    assert c.closed()
    assert len(box.files("new")) == 1
    plain_instance.wait_log(r"timeout in TRANSACTION from localhost")
    # Before the login too.
    c = RawPop(pop.port)
    assert c.line() == "-ERR autologout timer expired"
    assert c.closed()
    # A command trickled a byte at a time is cut off all the same.
    c = RawPop(pop.port)
    start = time.monotonic()
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        for _ in range(40):
            c.send(b"N")
            time.sleep(0.25)
    assert time.monotonic() - start < 6
    c.close()


@pytest.mark.skipif(not IS_ROOT, reason="needs root to make a Unix user")
def test_local_unix_user_reads_home_maildir(plain_instance):
    name = f"pop3t{os.getpid() % 100000}"
    home = plain_instance.root / "home" / name
    subprocess.run(["useradd", "--system", "--no-create-home",
                    "--home-dir", str(home), "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)
    try:
        pw = pwd.getpwnam(name)
        home.parent.mkdir()
        os.chmod(home.parent, 0o755)
        home.mkdir()
        os.chown(home, pw.pw_uid, pw.pw_gid)
        box = Maildir(home / "Maildir", pw.pw_uid, pw.pw_gid)
        box.deliver(ONE)
        pop = start_pop3d(plain_instance)
        table = plain_instance.etc / "pop3_passwd"
        with open(table, "a") as f:
            hashed = open_hash(table)
            f.write(f"{name} {hashed}\nroot {hashed}\n")
        subprocess.run([str(BIN / "postino-map"), f"hash:{table}"],
                       check=True, capture_output=True)
        c, reply = tls_login(pop, name)
        assert reply == "+OK Logged in, maildrop has 1 messages"
        assert c.cmd("RETR 1").startswith("+OK")
        assert b"first body" in c.multi()
        assert c.cmd("QUIT") == "+OK Bye"
        c.closed()
        assert len(box.files("cur")) == 1
        # root has no mailbox, whatever the table says.
        c, reply = tls_login(pop, "root")
        assert reply.startswith("-ERR [SYS/PERM]")
        c.close()
    finally:
        subprocess.run(["userdel", name], capture_output=True)


def open_hash(table):
    """The hash of the first entry (every test user has the same)."""
    return table.read_text().split("\n")[0].split()[1]
