"""smtpd against hostile clients: scripted sessions (each case a name and
a list of steps, a step the bytes to send and a pattern for the reply that
must come back), then the clients a script cannot play: the one that
talks before the greeting, trickles bytes, never reads, half-closes or
resets in the middle of a message.

Every scripted case runs on a fresh connection to one instance; the
instance is checked for sanitizer reports and stray processes at the end.
"""
import base64
import re
import socket
import ssl
import struct
import threading
import time

import pytest

import smtpd_instance
from conftest import finish_instance, make_instance
from smtpd_instance import PASSWORD, RawSmtp, queued, start_smtpd, wait_queued

CLOSED = "CLOSED"   # the server hung up (after any reply already read)
NOTHING = "NOTHING"  # bytes sent, no reply expected (e.g. a BDAT chunk)

SMTP_TIMEOUT = 3  # smtpd_timeout of the instance, seconds

EHLO = ("EHLO client.example", r"^250 CHUNKING$")
MAIL = ("MAIL FROM:<a@example.org>", r"^250 2\.1\.0 ")
RCPT = ("RCPT TO:<alice@mx.example.net>", r"^250 2\.1\.5 ")
TRANSACTION = [EHLO, MAIL, RCPT]

LONG_LOCAL = "l" * 65
LONG_DOMAIN = ".".join(["d" * 63] * 4) + ".example"  # > 255 octets
LONG_PATH = "p" * 64 + "@" + ".".join(["d" * 60] * 3) + ".example"


def b64(text):
    return base64.b64encode(text.encode()).decode()


PLAIN_OK = b64("\0alice\0" + PASSWORD)

CASES = {
    # ---- HELO and EHLO ----
    "helo without argument": [("HELO", r"^501 5\.5\.4 Syntax: HELO hostname")],
    "helo with spaces only": [("HELO   ", r"^501 5\.5\.4 ")],
    "ehlo without argument": [("EHLO", r"^501 5\.5\.4 Syntax: EHLO hostname")],
    "helo with a huge argument": [
        ("HELO " + "h" * 3000, r"^500 5\.5\.2 Error: line too long"),
        ("HELO " + "h" * 2000, r"^250 mx\.example\.net$"),
    ],
    "ehlo with several words": [("EHLO a b c", r"^250 CHUNKING$")],
    "lower case ehlo": [("ehlo client.example", r"^250 CHUNKING$")],
    # ---- MAIL ----
    "mail without argument": [EHLO, ("MAIL", r"^501 5\.5\.4 Syntax: MAIL "
                                             r"FROM:<address>")],
    "mail with garbage": [EHLO, ("MAIL garbage", r"^501 5\.5\.4 Syntax")],
    "mail from without colon": [EHLO, ("MAIL FROM <a@example.org>",
                                       r"^501 5\.5\.4 ")],
    "mail from with nothing": [EHLO, ("MAIL FROM:", r"^501 5\.1\.7 ")],
    "mail lower case": [EHLO, ("mail from:<a@example.org>", r"^250 2\.1\.0")],
    "mail mixed case": [EHLO, ("MaIl FrOm:<a@example.org>", r"^250 2\.1\.0")],
    "mail space after colon": [EHLO, ("MAIL FROM: <a@example.org>",
                                      r"^250 2\.1\.0")],
    "mail spaces after colon": [EHLO, ("MAIL FROM:   <a@example.org>",
                                       r"^250 2\.1\.0")],
    "mail two spaces after verb": [EHLO, ("MAIL  FROM:<a@example.org>",
                                          r"^250 2\.1\.0")],
    "mail space before colon": [EHLO, ("MAIL FROM :<a@example.org>",
                                       r"^501 5\.5\.4 ")],
    "mail null sender": [EHLO, ("MAIL FROM:<>", r"^250 2\.1\.0")],
    # as Postfix's default strict_rfc821_envelopes = no: brackets may be
    # missing
    "mail without brackets": [EHLO, ("MAIL FROM:a@example.org",
                                     r"^250 2\.1\.0")],
    "mail without brackets and size": [EHLO, ("MAIL FROM: a@example.org "
                                              "SIZE=10", r"^250 2\.1\.0")],
    "mail without brackets bad": [EHLO, ("MAIL FROM:a@@example.org",
                                         r"^501 5\.1\.7 ")],
    "mail half a bracket": [EHLO, ("MAIL FROM:a@example.org>",
                                   r"^501 5\.1\.7 ")],
    "rcpt without brackets": [EHLO, MAIL, ("RCPT TO:alice@mx.example.net",
                                           r"^250 2\.1\.5")],
    "mail nested": [EHLO, MAIL, ("MAIL FROM:<b@example.org>",
                                 r"^503 5\.5\.1 Error: nested MAIL")],
    "mail junk after path": [EHLO, ("MAIL FROM:<a@example.org>junk",
                                    r"^501 5\.1\.7 ")],
    "mail tab": [EHLO, ("MAIL FROM:<a@example.org>\tSIZE=1",
                        r"^501 5\.1\.7 ")],
    "mail unbalanced bracket": [EHLO, ("MAIL FROM:<a@example.org",
                                       r"^501 5\.1\.7 ")],
    "mail local part too long": [EHLO, (f"MAIL FROM:<{LONG_LOCAL}@example.org>",
                                        r"^501 5\.1\.7 ")],
    "mail domain too long": [EHLO, (f"MAIL FROM:<a@{LONG_DOMAIN}>",
                                    r"^501 5\.1\.7 ")],
    "mail path too long": [EHLO, (f"MAIL FROM:<{LONG_PATH}>",
                                  r"^501 5\.1\.7 ")],
    "mail ipv4 literal": [EHLO, ("MAIL FROM:<a@[127.0.0.1]>", r"^250 2\.1\.0")],
    "mail ipv6 literal": [EHLO, ("MAIL FROM:<a@[IPv6:::1]>", r"^250 2\.1\.0")],
    "mail bad ipv4 literal": [EHLO, ("MAIL FROM:<a@[999.0.0.1]>",
                                     r"^501 5\.1\.7 ")],
    "mail bad ipv6 literal": [EHLO, ("MAIL FROM:<a@[IPv6:zz::1]>",
                                     r"^501 5\.1\.7 ")],
    "mail open literal": [EHLO, ("MAIL FROM:<a@[127.0.0.1>",
                                 r"^501 5\.1\.7 ")],
    "mail empty literal": [EHLO, ("MAIL FROM:<a@[]>", r"^501 5\.1\.7 ")],
    "mail utf8 without smtputf8": [EHLO, ("MAIL FROM:<jösé@example.org>",
                                          r"^553 5\.6\.7 ")],
    "mail utf8 with smtputf8": [EHLO, ("MAIL FROM:<jösé@exämple.org> SMTPUTF8",
                                       r"^250 2\.1\.0")],
    "mail bad utf8": [EHLO, (b"MAIL FROM:<j\xff@example.org> SMTPUTF8\r\n",
                             r"^501 5\.1\.7 ")],
    "mail smtputf8 with a value": [EHLO, ("MAIL FROM:<a@example.org> "
                                          "SMTPUTF8=yes", r"^501 5\.5\.4 ")],
    # ---- ESMTP parameters ----
    "size twice": [EHLO, ("MAIL FROM:<a@example.org> SIZE=10 SIZE=10",
                          r"^501 5\.5\.4 ")],
    "size negative": [EHLO, ("MAIL FROM:<a@example.org> SIZE=-1",
                             r"^501 5\.5\.4 ")],
    "size overflow": [EHLO, ("MAIL FROM:<a@example.org> "
                             "SIZE=99999999999999999999", r"^501 5\.5\.4 ")],
    "size over the limit": [EHLO, ("MAIL FROM:<a@example.org> SIZE=100001",
                                   r"^552 5\.3\.4 ")],
    "size empty": [EHLO, ("MAIL FROM:<a@example.org> SIZE=", r"^501 5\.5\.4 ")],
    "size without value": [EHLO, ("MAIL FROM:<a@example.org> SIZE",
                                  r"^501 5\.5\.4 ")],
    "body unknown": [EHLO, ("MAIL FROM:<a@example.org> BODY=foo",
                            r"^501 5\.5\.4 ")],
    "body binarymime not offered": [EHLO, ("MAIL FROM:<a@example.org> "
                                           "BODY=BINARYMIME", r"^555 5\.5\.4 ")],
    "unknown parameter": [EHLO, ("MAIL FROM:<a@example.org> FOO=bar",
                                 r"^555 5\.5\.4 ")],
    "ret twice": [EHLO, ("MAIL FROM:<a@example.org> RET=FULL RET=HDRS",
                         r"^501 5\.5\.4 ")],
    "ret bad": [EHLO, ("MAIL FROM:<a@example.org> RET=ALL", r"^501 5\.5\.4 ")],
    "envid too long": [EHLO, ("MAIL FROM:<a@example.org> ENVID=" + "e" * 101,
                              r"^501 5\.5\.4 ")],
    "envid bad xtext": [EHLO, ("MAIL FROM:<a@example.org> ENVID=a+0D+0Ab",
                               r"^501 5\.5\.4 ")],
    "notify on mail": [EHLO, ("MAIL FROM:<a@example.org> NOTIFY=NEVER",
                              r"^555 5\.5\.4 ")],
    "notify never with success": [
        EHLO, MAIL, ("RCPT TO:<alice@mx.example.net> NOTIFY=NEVER,SUCCESS",
                     r"^501 5\.5\.4 ")],
    "notify empty item": [EHLO, MAIL, ("RCPT TO:<alice@mx.example.net> "
                                       "NOTIFY=SUCCESS,", r"^501 5\.5\.4 ")],
    "orcpt without semicolon": [EHLO, MAIL, ("RCPT TO:<alice@mx.example.net> "
                                             "ORCPT=alice@mx.example.net",
                                             r"^501 5\.5\.4 ")],
    "orcpt good": [EHLO, MAIL, ("RCPT TO:<alice@mx.example.net> "
                                "ORCPT=rfc822;alice@mx.example.net",
                                r"^250 2\.1\.5")],
    "size on rcpt": [EHLO, MAIL, ("RCPT TO:<alice@mx.example.net> SIZE=10",
                                  r"^555 5\.5\.4 ")],
    "ret on rcpt": [EHLO, MAIL, ("RCPT TO:<alice@mx.example.net> RET=FULL",
                                 r"^555 5\.5\.4 ")],
    "parameters after helo": [("HELO client.example", r"^250 "),
                              ("MAIL FROM:<a@example.org> SIZE=10",
                               r"^555 5\.5\.4 ")],
    # ---- RCPT ----
    "rcpt without mail": [EHLO, RCPT[:1] + (r"^503 5\.5\.1 ",)],
    "rcpt garbage": [EHLO, MAIL, ("RCPT garbage", r"^501 5\.5\.4 ")],
    "rcpt null": [EHLO, MAIL, ("RCPT TO:<>", r"^501 5\.1\.3 ")],
    "rcpt postmaster": [EHLO, MAIL, ("RCPT TO:<Postmaster>", r"^250 2\.1\.5")],
    "rcpt lower case": [EHLO, MAIL, ("rcpt to:<alice@mx.example.net>",
                                     r"^250 2\.1\.5")],
    "rcpt space after colon": [EHLO, MAIL, ("RCPT TO: <alice@mx.example.net>",
                                            r"^250 2\.1\.5")],
    "rcpt local part too long": [EHLO, MAIL, (f"RCPT TO:<{LONG_LOCAL}@"
                                              "mx.example.net>",
                                              r"^501 5\.1\.3 ")],
    "rcpt domain too long": [EHLO, MAIL, (f"RCPT TO:<a@{LONG_DOMAIN}>",
                                          r"^501 5\.1\.3 ")],
    "rcpt bad literal": [EHLO, MAIL, ("RCPT TO:<a@[1.2.3]>",
                                      r"^501 5\.1\.3 ")],
    "rcpt utf8 without smtputf8 on mail": [
        EHLO, MAIL, ("RCPT TO:<jösé@mx.example.net>", r"^553 5\.6\.7 ")],
    "rcpt unknown user": [EHLO, MAIL, ("RCPT TO:<nobody@mx.example.net>",
                                       r"^550 5\.1\.1 ")],
    "rcpt source route": [EHLO, MAIL, ("RCPT TO:<@a.example:alice@"
                                       "mx.example.net>", r"^250 2\.1\.5")],
    # ---- DATA, RSET and friends ----
    "data without mail": [EHLO, ("DATA", r"^503 5\.5\.1 ")],
    "data with an argument": [EHLO, MAIL, RCPT, ("DATA now", r"^501 5\.5\.4 ")],
    "data without valid recipients": [
        EHLO, MAIL, ("RCPT TO:<nobody@mx.example.net>", r"^550 "),
        ("DATA", r"^554 5\.5\.1 Error: no valid recipients")],
    "rset in the middle": [EHLO, MAIL, RCPT, ("RSET", r"^250 2\.0\.0"),
                           ("DATA", r"^503 5\.5\.1 "),
                           RCPT[:1] + (r"^503 5\.5\.1 ",), MAIL],
    "rset with an argument": [("RSET now", r"^501 5\.5\.4 ")],
    "noop with an argument": [("NOOP anything at all", r"^250 2\.0\.0")],
    "help with an argument": [("HELP MAIL", r"^214 2\.0\.0 ")],
    "vrfy without argument": [("VRFY", r"^501 5\.5\.4 ")],
    "expn": [("EXPN staff", r"^502 5\.5\.1 ")],
    "unknown command": [("XYZZY", r"^500 5\.5\.2 ")],
    "empty line": [("", r"^500 5\.5\.2 ")],
    "nul in a command": [(b"NOOP\0\r\n", r"^500 5\.5\.2 ")],
    "quit with an argument": [("QUIT now", r"^221 2\.0\.0"), CLOSED],
    "commands after quit": [(b"QUIT\r\nNOOP\r\nMAIL FROM:<a@example.org>\r\n",
                             r"^221 2\.0\.0"), CLOSED],
    # ---- Not SMTP at all ----
    "http request": [("GET / HTTP/1.1", r"^221 2\.7\.0 Error: I can break "
                                        r"rules, too\. Goodbye\."), CLOSED],
    "proxy request": [("CONNECT mx.example.net:25 HTTP/1.1", r"^221 2\.7\.0 "),
                      CLOSED],
    "header as a command": [EHLO, ("Subject: hello", r"^221 2\.7\.0 "), CLOSED],
    "leading space": [(" MAIL FROM:<a@example.org>", r"^221 2\.7\.0 "), CLOSED],
    # ---- AUTH (this port takes it without TLS) ----
    "auth before ehlo": [("AUTH PLAIN " + PLAIN_OK, r"^503 5\.5\.1 ")],
    "auth without mechanism": [EHLO, ("AUTH", r"^501 5\.5\.4 ")],
    "auth unknown mechanism": [EHLO, ("AUTH CRAM-MD5", r"^504 5\.5\.4 ")],
    "auth huge mechanism": [EHLO, ("AUTH " + "M" * 500, r"^501 5\.5\.4 ")],
    "auth invalid base64": [EHLO, ("AUTH PLAIN !!!!", r"^501 5\.5\.2 ")],
    "auth initial response =": [EHLO, ("AUTH PLAIN =", r"^501 5\.5\.2 ")],
    "auth initial response *": [EHLO, ("AUTH PLAIN *", r"^501 5\.5\.2 ")],
    "auth cancel": [EHLO, ("AUTH PLAIN", r"^334 "),
                    ("*", r"^501 5\.0\.0 Authentication aborted")],
    "auth huge response": [EHLO, ("AUTH PLAIN", r"^334 "),
                           ("A" * 13000, r"^500 5\.5\.6 "),
                           ("NOOP", r"^250 ")],
    "auth huge command line": [EHLO, ("AUTH PLAIN " + "A" * 3000,
                                      r"^500 5\.5\.2 ")],
    "auth login bad base64": [EHLO, ("AUTH LOGIN", r"^334 VXNlcm5hbWU6$"),
                              (b64("alice"), r"^334 UGFzc3dvcmQ6$"),
                              ("%%%", r"^501 5\.5\.2 "), ("NOOP", r"^250 ")],
    "auth login cancel": [EHLO, ("AUTH LOGIN", r"^334 "), ("*", r"^501 5\.0\.0")],
    "auth plain bad password": [EHLO, ("AUTH PLAIN " + b64("\0alice\0nope"),
                                       r"^535 5\.7\.8 ")],
    "auth twice": [EHLO, ("AUTH PLAIN " + PLAIN_OK, r"^235 2\.7\.0"),
                   ("AUTH PLAIN " + PLAIN_OK, r"^503 5\.5\.1 ")],
    "auth inside a transaction": [EHLO, MAIL, ("AUTH PLAIN " + PLAIN_OK,
                                               r"^503 5\.5\.1 ")],
    # ---- STARTTLS ----
    "starttls with an argument": [EHLO, ("STARTTLS now", r"^501 5\.5\.4 ")],
    # ---- BDAT ----
    "bdat negative": [EHLO, MAIL, RCPT, ("BDAT -1", r"^501 5\.5\.4 "), CLOSED],
    "bdat huge count": [EHLO, MAIL, RCPT, ("BDAT 99999999999999999999",
                                           r"^501 5\.5\.4 "), CLOSED],
    "bdat last extra": [EHLO, MAIL, RCPT, ("BDAT 10 LAST extra",
                                           r"^501 5\.5\.4 "), CLOSED],
    "bdat without count": [EHLO, MAIL, RCPT, ("BDAT", r"^501 5\.5\.4 "),
                           CLOSED],
    "bdat count with junk": [EHLO, MAIL, RCPT, ("BDAT 10x", r"^501 5\.5\.4 "),
                             CLOSED],
    "bdat without mail": [EHLO, (b"BDAT 5\r\nabcde", r"^503 5\.5\.1 "),
                          ("NOOP", r"^250 ")],
    "bdat after data": [EHLO, MAIL, RCPT, ("DATA", r"^354 "),
                        (b"Subject: x\r\n\r\nbody\r\n.\r\n",
                         r"^250 2\.0\.0 Ok: queued as "),
                        (b"BDAT 3 LAST\r\nabc", r"^503 5\.5\.1 "),
                        ("NOOP", r"^250 ")],
    "data after bdat": [EHLO, MAIL, RCPT, (b"BDAT 3\r\nabc", r"^250 "),
                        ("DATA", r"^503 5\.5\.1 ")],
    "bdat too big for the limit": [EHLO, MAIL, RCPT,
                                   (b"BDAT 100001 LAST\r\n" + b"x" * 100001,
                                    r"^552 5\.3\.4 "), ("NOOP", r"^250 ")],
    "bdat lower case last": [EHLO, MAIL, RCPT,
                             (b"bdat 16 last\r\nSubject: x\r\n\r\nb\r\n",
                              r"^250 2\.0\.0 Ok: queued as ")],
    # ---- Pipelining ----
    "pipelined after ehlo": [(b"EHLO client.example\r\nMAIL FROM:<a@"
                              b"example.org>\r\n", r"^250 CHUNKING$"),
                             (NOTHING, r"^554 5\.5\.0 Error: SMTP protocol "
                                       r"synchronization"), CLOSED],
    "pipelined without ehlo": [("HELO client.example", r"^250 "),
                               (b"MAIL FROM:<a@example.org>\r\nRCPT TO:"
                                b"<alice@mx.example.net>\r\n", r"^250 2\.1\.0"),
                               (NOTHING, r"^554 5\.5\.0 "), CLOSED],
    "pipelined noops": [EHLO, (b"NOOP\r\nNOOP\r\n", r"^250 "),
                        (NOTHING, r"^554 5\.5\.0 "), CLOSED],
    "pipelined transaction": [EHLO, (b"MAIL FROM:<a@example.org>\r\nRCPT TO:"
                                     b"<alice@mx.example.net>\r\nRSET\r\n",
                                     r"^250 2\.1\.0"),
                              (NOTHING, r"^250 2\.1\.5"),
                              (NOTHING, r"^250 2\.0\.0"), ("NOOP", r"^250 ")],
    "replies before a partial line": [EHLO, (b"RSET\r\nNOO", r"^250 2\.0\.0"),
                                      (b"P\r\n", r"^250 2\.0\.0")],
    "pipelined past data": [EHLO, (b"MAIL FROM:<a@example.org>\r\nRCPT TO:"
                                   b"<alice@mx.example.net>\r\nDATA\r\n"
                                   b"Subject: x\r\n\r\n.\r\n", r"^250 2\.1\.0"),
                            (NOTHING, r"^250 2\.1\.5"),
                            (NOTHING, r"^554 5\.5\.0 "), CLOSED],
}

# 1001 pipelined recipients: the limit is 1000 (smtpd_recipient_limit).
CASES["recipient limit"] = [
    EHLO, MAIL,
    (b"RCPT TO:<alice@mx.example.net>\r\n" * 1001, r"^250 2\.1\.5")] + \
    [(NOTHING, r"^250 2\.1\.5")] * 999 + \
    [(NOTHING, r"^452 4\.5\.3 Error: too many recipients"), ("RSET", "^250")]


@pytest.fixture(scope="module")
def hostile():
    """One instance for every scripted case; the smtp port takes AUTH
    without TLS so that the AUTH cases need no handshake."""
    inst = make_instance(None)
    ports = start_smtpd(inst, f"smtpd_timeout = {SMTP_TIMEOUT}s\n",
                        extra_smtp="\n  -o smtpd_sasl_auth_enable=yes"
                                   "\n  -o smtpd_tls_auth_only=no")
    yield inst, ports
    finish_instance(inst)


def reply_line(c):
    """The last line of the next reply as "CODE TEXT", or CLOSED."""
    code, lines = c.reply()
    if code is None:
        return CLOSED
    return f"{code} {lines[-1]}"


def run_script(c, steps):
    for number, step in enumerate(steps, 1):
        if step == CLOSED:
            assert c.closed(), f"step {number}: the server did not hang up"
            continue
        data, pattern = step
        if data != NOTHING:
            c.send(data if isinstance(data, bytes)
                   else data.encode() + b"\r\n")
        got = reply_line(c)
        assert got != CLOSED and re.search(pattern, got), \
            f"step {number} {data!r:.80}: got {got!r}, want {pattern!r}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_scripted_session(hostile, name):
    inst, ports = hostile
    c = RawSmtp(ports.smtp)
    try:
        run_script(c, CASES[name])
    finally:
        c.close()


# ---- clients a script cannot play --------------------------------------

@pytest.mark.parametrize("command", ["NOOP", "RSET", "VRFY alice", "HELP",
                                     "EHLO client.example"])
def test_junk_commands_are_bounded(hostile, command):
    """NOOP, RSET, VRFY (and HELO, EHLO, HELP) are free up to
    smtpd_junk_command_limit (100); then each one counts as an error, so
    a flood of 10000 ends at the hard limit (20)."""
    inst, ports = hostile
    c = RawSmtp(ports.smtp)
    codes = []
    for _ in range(10000):
        code, _ = c.cmd(command)
        codes.append(code)
        if code >= 400:
            break
    assert len(codes) == 100 + 20 + 1 and codes[-1] == 421, codes[-5:]
    assert c.closed()
    c.close()
    verb = command.split()[0]
    inst.wait_log(rf"too many errors after {verb} from localhost")


def test_a_delivered_message_resets_the_junk_count(hostile):
    inst, ports = hostile
    c = RawSmtp(ports.smtp)
    for _ in range(90):
        assert c.cmd("NOOP")[0] == 250
    run_script(c, TRANSACTION + [("DATA", r"^354 "),
                                 (b"Subject: x\r\n\r\nb\r\n.\r\n",
                                  r"^250 2\.0\.0 Ok: queued")])
    for _ in range(100):
        assert c.cmd("RSET")[0] == 250
    c.close()


def test_talking_before_the_greeting_ends_the_session(plain_instance):
    """Postfix 3.9's smtpd_forbid_unauth_pipelining: the greeting, then
    554 5.5.0, and the log line that names what the client sent.  With
    one smtpd process, busy with a first client, the second client's bytes
    are surely there before its greeting."""
    real = smtpd_instance.smtpd_master_cf

    def one_process(ports, extra_smtp=""):
        return real(ports, extra_smtp).replace(" inet n - n - - ",
                                               " inet n - n - 1 ", 1)

    smtpd_instance.smtpd_master_cf = one_process
    try:
        ports = start_smtpd(plain_instance)
    finally:
        smtpd_instance.smtpd_master_cf = real
    first = RawSmtp(ports.smtp)
    c = RawSmtp(ports.smtp, greeting=False)
    c.send(b"EHLO spam.example\r\n")
    time.sleep(0.2)
    assert first.cmd("QUIT")[0] == 221
    first.close()
    assert c.reply()[0] == 220
    assert c.reply() == (554, ["5.5.0 Error: SMTP protocol synchronization"])
    assert c.closed()
    c.close()
    plain_instance.wait_log(r"improper command pipelining after CONNECT from "
                            r"localhost\[127\.0\.0\.1\]: EHLO spam\.example"
                            r"\\r\\n")


def test_a_pipelined_bdat_transaction_twice_in_one_packet(hostile):
    """RFC 3030 allows BDAT to be pipelined: two whole messages in one
    write are both queued."""
    inst, ports = hostile
    before = len(queued(inst))
    c = RawSmtp(ports.smtp)
    run_script(c, [EHLO])
    body = b"Subject: twice\r\n\r\nbody\r\n"
    one = (b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@mx.example.net>\r\n"
           b"BDAT %d LAST\r\n" % len(body) + body)
    c.send(one + one + b"QUIT\r\n")
    replies = [reply_line(c) for _ in range(7)]
    assert [r[:3] for r in replies] == ["250"] * 6 + ["221"], replies
    assert "queued as" in replies[2] and "queued as" in replies[5]
    c.close()
    wait_queued(inst, before + 2)


def test_slowloris_cannot_stretch_a_command(hostile):
    """One byte every 0.3 s: every single read is quick, but the whole
    command must arrive within smtpd_timeout."""
    inst, ports = hostile
    c = RawSmtp(ports.smtp)
    started = time.monotonic()
    got = None
    c.sock.settimeout(0.3)
    for byte in b"EHLO " + b"x" * 100:
        try:
            c.send(bytes([byte]))
        except OSError:
            break
        try:
            got = c.sock.recv(1024)
            break
        except socket.timeout:
            pass
    elapsed = time.monotonic() - started
    assert got and got.startswith(b"421 4.4.2 "), got
    assert SMTP_TIMEOUT - 0.5 < elapsed < SMTP_TIMEOUT + 3
    c.close()
    inst.wait_log(r"timeout after CONNECT from localhost")


def test_a_client_that_never_reads_is_dropped(plain_instance):
    """Replies pile up in the socket until writes block; the write side
    is bounded by smtpd_timeout as well.  (Junk commands are let be here,
    so that the replies can grow without errors.)"""
    ports = start_smtpd(plain_instance, f"smtpd_timeout = {SMTP_TIMEOUT}s\n"
                                        "smtpd_junk_command_limit = 100000\n")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", ports.smtp))
    sock.settimeout(2 * SMTP_TIMEOUT + 5)
    sock.recv(1024)  # the greeting
    sock.sendall(b"EHLO client.example\r\n")
    time.sleep(0.2)
    started = time.monotonic()

    def flood():
        try:
            sock.sendall(b"HELP\r\n" * 90000)
        except OSError:
            pass

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    plain_instance.wait_log(r"timeout after HELP from localhost",
                            timeout=2 * SMTP_TIMEOUT + 5)
    assert time.monotonic() - started < 2 * SMTP_TIMEOUT + 5
    sock.close()
    thread.join(5)


def test_auth_response_deadline(hostile):
    """An AUTH exchange cannot be stretched either."""
    inst, ports = hostile
    c = RawSmtp(ports.smtp)
    run_script(c, [EHLO, ("AUTH LOGIN", r"^334 ")])
    started = time.monotonic()
    c.sock.settimeout(0.3)
    got = b""
    for _ in range(40):
        try:
            c.send(b"Y")
            got = c.sock.recv(1024)
            break
        except socket.timeout:
            pass
    assert got.startswith(b"421 4.4.2 "), got
    assert time.monotonic() - started < SMTP_TIMEOUT + 3
    c.close()
    inst.wait_log(r"timeout after AUTH from localhost")


def test_half_close_gets_the_replies(hostile):
    inst, ports = hostile
    c = RawSmtp(ports.smtp)
    c.send(b"NOOP\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.reply() == (250, ["2.0.0 Ok"])
    assert c.closed()
    c.close()
    c = RawSmtp(ports.smtp)
    c.send(b"QUIT\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.reply()[0] == 221
    c.close()
    inst.wait_log(r"lost connection after NOOP from localhost")


def test_reset_in_the_middle_of_data_queues_nothing(hostile):
    inst, ports = hostile
    before = set(queued(inst))
    c = RawSmtp(ports.smtp)
    run_script(c, TRANSACTION + [("DATA", r"^354 ")])
    c.send(b"Subject: cut\r\n\r\nhalf a mess")
    time.sleep(0.2)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                      struct.pack("ii", 1, 0))
    c.close()  # RST, not FIN
    inst.wait_log(r"lost connection after DATA \(\d+ bytes\) from localhost")
    time.sleep(0.2)
    assert set(queued(inst)) == before
    c = RawSmtp(ports.smtp)  # and the service is still there
    assert c.cmd("NOOP")[0] == 250
    c.close()


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_starttls_twice_and_pipelined_garbage(hostile):
    """Plaintext pipelined behind STARTTLS is thrown away (checked here
    with a raw TLS session after it); a second STARTTLS is refused."""
    inst, ports = hostile
    c = RawSmtp(ports.smtp)
    run_script(c, [EHLO])
    c.send(b"STARTTLS\r\nRCPT TO:<evil@example.org>\r\nGARBAGE\r\n")
    assert c.reply()[0] == 220
    tls = tls_context().wrap_socket(c.sock, server_hostname="localhost")
    f = tls.makefile("rb")

    def ask(line):
        tls.sendall(line + b"\r\n")
        while True:
            reply = f.readline()
            if reply[3:4] != b"-":
                return reply

    assert ask(b"NOOP").startswith(b"250 ")  # no 500 for GARBAGE
    assert ask(b"EHLO client.example").startswith(b"250 CHUNKING")
    assert ask(b"STARTTLS").startswith(b"554 5.5.1")
    assert ask(b"STARTTLS now").startswith(b"501 5.5.4")
    assert ask(b"MAIL FROM:<a@example.org>").startswith(b"250 2.1.0")
    assert ask(b"RCPT TO:<alice@mx.example.net>").startswith(b"250 2.1.5")
    tls.close()


def test_a_lone_quit_may_follow_ehlo(hostile):
    """What scripted clients do; QUIT smuggles nothing, so it is let be."""
    inst, ports = hostile
    c = RawSmtp(ports.smtp)
    c.send(b"EHLO client.example\r\nQUIT\r\n")
    assert reply_line(c) == "250 CHUNKING"
    assert reply_line(c).startswith("221 2.0.0")
    c.close()


def test_pipelining_may_be_allowed(plain_instance):
    """smtpd_forbid_unauth_pipelining = no: logged, not refused."""
    ports = start_smtpd(plain_instance, "smtpd_forbid_unauth_pipelining = no\n")
    c = RawSmtp(ports.smtp)
    c.send(b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n")
    assert reply_line(c) == "250 CHUNKING"
    assert reply_line(c).startswith("250 2.1.0")
    assert c.cmd("RCPT TO:<alice@mx.example.net>")[0] == 250
    c.close()
    plain_instance.wait_log(r"improper command pipelining after EHLO from "
                            r"localhost\[127\.0\.0\.1\]: MAIL FROM:<a@"
                            r"example\.org>\\r\\n")
    # Logged once per session, as Postfix does.
    c = RawSmtp(ports.smtp)
    c.send(b"HELO client.example\r\nNOOP\r\nNOOP\r\nQUIT\r\n")
    assert [reply_line(c)[:3] for _ in range(4)] == ["250", "250", "250",
                                                      "221"]
    c.close()
    plain_instance.wait_log(r"disconnect from .* helo=1 noop=2 quit=1")
    assert len(re.findall(r"improper command pipelining after",
                          plain_instance.log())) == 2


SAMPLE = ["bdat huge count", "http request", "pipelined after ehlo",
          "size overflow", "auth huge response", "mail path too long",
          "rcpt utf8 without smtputf8 on mail", "replies before a partial "
          "line", "bdat after data", "commands after quit"]


def test_sample_as_root_and_as_nobody(instance):
    """A sample of the scripts against an instance run as root (children
    as postino) and as nobody."""
    ports = start_smtpd(instance, extra_smtp="\n  -o smtpd_sasl_auth_enable=yes"
                                             "\n  -o smtpd_tls_auth_only=no")
    for name in SAMPLE:
        c = RawSmtp(ports.smtp)
        try:
            run_script(c, CASES[name])
        finally:
            c.close()
    wait_queued(instance, 1)  # the message of "bdat after data"


def test_empty_bdat_chunks_are_bounded(hostile):
    inst, ports = hostile
    c = RawSmtp(ports.smtp)
    run_script(c, TRANSACTION)
    codes = []
    for _ in range(1000):
        code, _ = c.cmd("BDAT 0")
        codes.append(code)
        if code != 250:
            break
    # The EHLO was the first junk command: 99 free chunks, 20 errors, 421.
    assert len(codes) == 99 + 20 + 1 and codes[-1] == 421, codes[-3:]
    c.close()
