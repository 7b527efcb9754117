"""The SMTP delivery agent (daemons/smtp), driven as qmgr drives it: a
message goes through cleanup, the test moves it into active/ and sends a
delivery request to private/smtp (records.deliver).  The peers are on
loopback: a second Postino instance (smtpd + cleanup), Postfix's
smtp-sink, and scripted servers (fake_smtp.py) for odd replies.  The MX
cases, at the end, need DNS: they run in a network namespace with its own
dnsmasq (netns.py).
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

from conftest import (BIN, IS_ROOT, finish_instance, free_port,
                      instance_modes, instance_user, make_instance,
                      self_signed_certificate, wait_until)
from fake_smtp import FakeSmtp
from records import deliver, queue_through_cleanup
from smtpd_instance import start_smtpd, wait_queued

SMTP_SINK = shutil.which("smtp-sink") or (
    "/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None)
MESSAGE = ("Subject: test\nFrom: <sender@example.org>\n"
           "To: <rcpt@example.com>\n\nHello.\n")


def agent_master_cf(extra=""):
    return (f"cleanup unix - - n - 0 {BIN}/cleanup\n"
            f"smtp unix - - n - - {BIN}/smtp\n"
            f"relay unix - - n - - {BIN}/smtp\n" + extra)


def start_agent(inst, main_cf=""):
    inst.write_main_cf("myhostname = client.example.org\n"
                       "mydestination =\n" + main_cf)
    inst.write_master_cf(agent_master_cf())
    inst.start()


def queue_message(inst, recipients, content=MESSAGE,
                  sender="sender@example.org", into_active=True, **attrs):
    """Cleanup writes the message; it is moved into active/ as qmgr does
    (unless into_active is false: then the instance's own qmgr takes it).
    recipients: addresses or (address, orcpt, notify)."""
    return queue_through_cleanup(inst.queue, sender, recipients, content,
                                 into_active, **attrs)


def send(inst, recipients, nexthop, content=MESSAGE, service="smtp",
         sender="sender@example.org", **attrs):
    qid = queue_message(inst, recipients, content, sender, **attrs)
    rcpts = []
    for r in recipients:
        if isinstance(r, str):
            rcpts.append(r)
        else:
            rcpts.append({"address": r[0], "orcpt": r[1], "notify": r[2]})
    results = deliver(inst.queue / "private" / service, inst.queue, qid,
                      rcpts, nexthop=nexthop)
    return qid, results


@pytest.fixture
def agent(instance):
    start_agent(instance)
    return instance


@pytest.fixture
def fake():
    servers = []

    def make(**kw):
        srv = FakeSmtp(**kw)
        servers.append(srv)
        return srv
    yield make
    for srv in servers:
        srv.close()


def hop(srv):
    return f"[127.0.0.1]:{srv.port}"


# ---- the conversation -------------------------------------------------

def test_pipelined_delivery(agent, fake):
    srv = fake(check_pipelining=True)
    qid, results = send(agent, ["a@example.com", "b@example.com"], hop(srv))
    for r in results:
        assert r["status"] == "sent", r
        assert r["dsn"] == "2.0.0"
        assert r["text"] == "250 2.0.0 Ok: queued as FAKE1"
        assert r["relay"] == f"127.0.0.1[127.0.0.1]:{srv.port}"
        assert r["action"] == "relayed"
        assert r["dsn_passed"] == "1"     # the server offered DSN
        assert "destination_failure" not in r
    agent.wait_log(rf"{qid}: to=<a@example\.com>, relay=127\.0\.0\.1"
                   rf"\[127\.0\.0\.1\]:{srv.port}, delay=[\d.]+, "
                   r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, "
                   r"status=sent \(250 2\.0\.0 Ok: queued as FAKE1\)")
    [session] = srv.wait_sessions(1, timeout=15)
    assert session["pipelined"] is True
    cmds = session["commands"]
    assert cmds[0] == "EHLO client.example.org"
    assert cmds[1].startswith("MAIL FROM:<sender@example.org> SIZE=")
    assert cmds[2:5] == ["RCPT TO:<a@example.com>", "RCPT TO:<b@example.com>",
                         "DATA"]
    assert session["data"][0].endswith("\r\n\r\nHello.\r\n")


def test_dot_stuffing_crlf_and_long_lines(agent, fake):
    srv = fake()
    body = ".leading dot\n..two\n" + "x" * 2500 + "\nend"
    qid, [r] = send(agent, ["a@example.com"], hop(srv),
                    content="Subject: dots\n\n" + body)
    assert r["status"] == "sent", r
    [session] = srv.wait_sessions(1, timeout=15)
    data = session["data"][0]
    assert "\r\n..leading dot\r\n...two\r\n" in data
    assert "\n" not in data.replace("\r\n", "")
    lines = data.split("\r\n")
    long = [i for i, l in enumerate(lines) if l.startswith("xxx")]
    assert all(len(lines[i]) <= 999 for i in range(len(lines)))
    joined = lines[long[0]] + "".join(l[1:] for l in lines[long[0] + 1:
                                                          long[0] + 3])
    assert joined == "x" * 2500
    assert lines[long[0] + 1].startswith(" x")
    assert data.endswith("\r\nend\r\n")


def test_helo_when_ehlo_is_refused(agent, fake):
    srv = fake(helo_only=True)
    qid, [r] = send(agent, ["a@example.com"], hop(srv))
    assert r["status"] == "sent", r
    [session] = srv.wait_sessions(1, timeout=15)
    assert session["commands"][:3] == ["EHLO client.example.org",
                                       "HELO client.example.org",
                                       "MAIL FROM:<sender@example.org>"]


@pytest.mark.parametrize("ehlo", [["PIPELINING", "DSN"], ["DSN"]],
                         ids=["pipelining", "one-by-one"])
def test_one_recipient_refused_550(agent, fake, ehlo):
    srv = fake(ehlo=ehlo,
               rcpt=lambda a: "550 5.1.1 <%s>: Recipient address rejected: "
               "User unknown" % a if a.startswith("bad") else "250 2.1.5 Ok")
    qid, (good, bad) = send(agent, ["good@example.com", "bad@example.com"],
                            hop(srv))
    assert good["status"] == "sent", good
    assert bad["status"] == "bounced", bad
    assert bad["dsn"] == "5.1.1"
    reply = ("550 5.1.1 <bad@example.com>: Recipient address rejected: "
             "User unknown")
    assert bad["diagnostic"] == "smtp; " + reply
    assert bad["remote_mta"] == "dns; 127.0.0.1"
    assert bad["text"] == (f"host 127.0.0.1[127.0.0.1] said: {reply} "
                           "(in reply to RCPT TO command)")
    agent.wait_log(rf"{qid}: to=<bad@example\.com>, .*dsn=5\.1\.1, "
                   r"status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] "
                   r"said: 550 5\.1\.1")


def test_4xx_recipient_is_deferred(agent, fake):
    srv = fake(rcpt=lambda a: "450 4.2.0 <%s>: try later" % a)
    qid, [r] = send(agent, ["a@example.com"], hop(srv))
    assert r["status"] == "deferred", r
    assert r["dsn"] == "4.2.0"
    assert "destination_failure" not in r
    [session] = srv.wait_sessions(1, timeout=15)
    assert session["data"] == []


def test_421_greeting_is_a_destination_failure(agent, fake):
    srv = fake(greeting="421 4.3.2 Service shutting down")
    qid, [r] = send(agent, ["a@example.com"], hop(srv))
    assert r["status"] == "deferred", r
    assert r["destination_failure"] == "1"
    assert r["text"] == ("host 127.0.0.1[127.0.0.1] refused to talk to me: "
                         "421 4.3.2 Service shutting down")
    assert r["dsn"] == "4.3.2"


def test_5xx_greeting_bounces(agent, fake):
    srv = fake(greeting="554 5.7.1 go away")
    qid, [r] = send(agent, ["a@example.com"], hop(srv))
    assert r["status"] == "bounced", r
    assert r["dsn"] == "5.7.1"
    assert r["diagnostic"] == "smtp; 554 5.7.1 go away"


@pytest.mark.parametrize("options", [
    {"greeting": "hello, I am not SMTP"},
    {"ehlo": ["X%d" % i for i in range(3000)]},     # an endless reply
    {"mail": "2"},                                  # not a reply
], ids=["bad-greeting", "endless-ehlo", "short-reply"])
def test_hostile_server_replies_are_deferred(agent, fake, options):
    srv = fake(**options)
    qid, [r] = send(agent, ["a@example.com"], hop(srv))
    assert r["status"] == "deferred", r
    assert r["text"].startswith("lost connection with 127.0.0.1"), r


def test_overlong_reply_line_is_cut_not_fatal(agent, fake):
    srv = fake(ehlo=["PIPELINING", "X" * 20000, "8BITMIME"])
    qid, [r] = send(agent, ["a@example.com"], hop(srv))
    assert r["status"] == "sent", r


def test_mail_refused_multiline_reply(agent, fake):
    srv = fake(mail="451-4.3.0 first line\r\n451 4.3.0 second line")
    qid, [r] = send(agent, ["a@example.com"], hop(srv))
    assert r["status"] == "deferred", r
    assert r["diagnostic"] == ("smtp; 451-4.3.0 first line "
                               "451 4.3.0 second line")
    assert r["text"].endswith("(in reply to MAIL FROM command)")
    assert r["destination_failure"] == "1"


def test_greeting_timeout(instance, fake):
    start_agent(instance, "smtp_helo_timeout = 1s\n")
    srv = fake(greeting_delay=3)
    start = time.monotonic()
    qid, [r] = send(instance, ["a@example.com"], hop(srv))
    assert time.monotonic() - start < 3
    assert r["status"] == "deferred", r
    assert r["destination_failure"] == "1"
    assert r["text"] == ("conversation with 127.0.0.1[127.0.0.1] timed out "
                         "while receiving the initial server greeting")
    assert r["dsn"] == "4.4.2"


def test_connection_refused(agent):
    port = free_port()
    qid, [r] = send(agent, ["a@example.com"], f"[127.0.0.1]:{port}")
    assert r["status"] == "deferred", r
    assert r["destination_failure"] == "1"
    assert r["dsn"] == "4.4.1"
    assert r["relay"] == "none"
    assert r["text"] == (f"connect to 127.0.0.1[127.0.0.1]:{port}: "
                         "Connection refused")
    agent.wait_log(rf"{qid}: to=<a@example\.com>, relay=none, .*"
                   r"status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]"
                   rf":{port}: Connection refused\)")


def test_size_too_big_is_bounced_without_data(agent, fake):
    srv = fake(ehlo=["PIPELINING", "SIZE 1000", "8BITMIME"])
    content = "Subject: big\n\n" + ("y" * 70 + "\n") * 100
    qid, [r] = send(agent, ["a@example.com"], hop(srv), content=content)
    assert r["status"] == "bounced", r
    assert r["dsn"] == "5.3.4"
    assert re.match(r"message size \d+ exceeds size limit 1000 of server "
                    r"127\.0\.0\.1\[127\.0\.0\.1\]", r["text"]), r
    [session] = srv.wait_sessions(1, timeout=15)
    assert not any(c.startswith(("MAIL", "DATA"))
                   for c in session["commands"]), session


EIGHT_BIT = ("Subject: caf\u00e9\nMIME-Version: 1.0\n"
             "Content-Type: text/plain; charset=utf-8\n"
             "Content-Transfer-Encoding: 8bit\n\n"
             "Un caf\u00e9 cr\u00e8me = 2\u20ac\n").encode()


def test_8bit_to_peer_without_8bitmime_becomes_quoted_printable(agent, fake):
    srv = fake(ehlo=["PIPELINING", "SIZE 100000"])
    qid, [r] = send(agent, ["a@example.com"], hop(srv), content=EIGHT_BIT)
    assert r["status"] == "sent", r
    [session] = srv.wait_sessions(1, timeout=15)
    data = session["data"][0]
    assert "Content-Transfer-Encoding: quoted-printable\r\n" in data
    assert "Content-Transfer-Encoding: 8bit" not in data
    assert "Un caf=C3=A9 cr=C3=A8me =3D 2=E2=82=AC\r\n" in data
    mail = [c for c in session["commands"] if c.startswith("MAIL")][0]
    assert "BODY=8BITMIME" not in mail


def test_8bit_to_peer_with_8bitmime_is_sent_as_is(agent, fake):
    srv = fake()
    qid, [r] = send(agent, ["a@example.com"], hop(srv), content=EIGHT_BIT)
    assert r["status"] == "sent", r
    [session] = srv.wait_sessions(1, timeout=15)
    assert "Un caf\u00e9" in session["data"][0].encode("latin-1").decode()
    mail = [c for c in session["commands"] if c.startswith("MAIL")][0]
    assert mail.endswith("BODY=8BITMIME")


def test_8bit_binary_part_that_cannot_be_converted_bounces(agent, fake):
    srv = fake(ehlo=["PIPELINING"])
    content = (b"Subject: bin\nMIME-Version: 1.0\n"
               b"Content-Type: application/octet-stream\n"
               b"Content-Transfer-Encoding: 8bit\n\n\xff\xfe\x00x\n")
    qid, [r] = send(agent, ["a@example.com"], hop(srv), content=content)
    assert r["status"] == "bounced", r
    assert r["dsn"] == "5.6.3"


def test_smtputf8_needed_but_not_offered(agent, fake):
    srv = fake(ehlo=["PIPELINING", "8BITMIME"])
    qid, [r] = send(agent, ["j\u00f6rg@example.com"], hop(srv),
                    smtputf8="1")
    assert r["status"] == "bounced", r
    assert r["dsn"] == "5.6.7"
    assert r["text"] == ("SMTPUTF8 is required, but was not offered by "
                         "host 127.0.0.1[127.0.0.1]")


def test_smtputf8_passed_on_when_offered(agent, fake):
    srv = fake(ehlo=["PIPELINING", "8BITMIME", "SMTPUTF8"])
    qid, [r] = send(agent, ["j\u00f6rg@example.com"], hop(srv),
                    smtputf8="1")
    assert r["status"] == "sent", r
    [session] = srv.wait_sessions(1, timeout=15)
    mail = [c for c in session["commands"] if c.startswith("MAIL")][0]
    assert mail.endswith(" SMTPUTF8")
    assert "RCPT TO:<j\u00f6rg@example.com>" in session["commands"]


def test_dsn_parameters_to_fake_and_relayed_without_dsn(agent, fake):
    srv = fake()
    rcpts = [("a@example.com", "rfc822;orig+x@example.com",
              "SUCCESS,FAILURE")]
    qid, [r] = send(agent, rcpts, hop(srv), dsn_envid="env id=1",
                    dsn_ret="HDRS")
    assert r["status"] == "sent", r
    [session] = srv.wait_sessions(1, timeout=15)
    mail = [c for c in session["commands"] if c.startswith("MAIL")][0]
    assert "RET=HDRS" in mail and "ENVID=env+20id+3D1" in mail
    rcpt = [c for c in session["commands"] if c.startswith("RCPT")][0]
    assert rcpt == ("RCPT TO:<a@example.com> NOTIFY=SUCCESS,FAILURE "
                    "ORCPT=rfc822;orig+2Bx@example.com")
    assert r["action"] == "relayed" and r["dsn_passed"] == "1", r
    # Without DSN at the peer, SUCCESS is answered here: "relayed", and
    # no dsn_passed.
    srv2 = fake(ehlo=["PIPELINING", "8BITMIME"])
    qid, [r] = send(agent, rcpts, hop(srv2), dsn_ret="HDRS")
    assert r["status"] == "sent" and r["action"] == "relayed", r
    assert "dsn_passed" not in r
    [session] = srv2.wait_sessions(1, timeout=15)
    assert not any("NOTIFY=" in c or "RET=" in c for c in
                   session["commands"])


def test_connection_reuse(agent, fake):
    srv = fake()
    qid1, [r1] = send(agent, ["a@example.com"], hop(srv))
    qid2, [r2] = send(agent, ["b@example.com"], hop(srv))
    assert r1["status"] == r2["status"] == "sent", (r1, r2)
    [session] = srv.wait_sessions(1, timeout=15)
    cmds = session["commands"]
    assert cmds.count("EHLO client.example.org") == 1
    assert "RSET" in cmds
    assert len(session["data"]) == 2
    assert cmds[-1] == "QUIT"   # closed after the idle time limit
    assert len(srv.sessions) == 1


def test_relay_service_is_the_same_agent(agent, fake):
    srv = fake()
    qid, [r] = send(agent, ["a@example.com"], hop(srv), service="relay")
    assert r["status"] == "sent", r
    agent.wait_log(rf"postino/smtp\[\d+\]: {qid}: to=<a@example\.com>, "
                   r"relay=127\.0\.0\.1")


# ---- the local address: smtp_bind_address, smtp_bind_address6 -----------

NOT_HERE4, NOT_HERE6 = "203.0.113.1", "2001:db8::99"  # documentation nets


def is_local(addr):
    """True when this host (this network namespace) has addr."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((addr, 0))
        except OSError:
            return False
    return True


def test_bind_address_is_the_source_of_ipv4_connections(instance, fake):
    # The IPv6 address is not on this host: an IPv4 connection ignores it.
    start_agent(instance, "smtp_bind_address = 127.0.0.2\n"
                f"smtp_bind_address6 = {NOT_HERE6}\n"
                "smtp_connection_cache_time_limit = 0\n")
    srv = fake()
    qid, [r] = send(instance, ["a@example.com"], hop(srv))
    assert r["status"] == "sent", r
    [session] = srv.wait_sessions(1, timeout=15)
    assert session["peer"] == "127.0.0.2"


def test_bind_address_of_one_family_leaves_the_other_unbound(instance, fake):
    if not is_local("::1"):
        pytest.skip("no ::1 on this host")
    start_agent(instance, f"smtp_bind_address = {NOT_HERE4}\n"
                "smtp_connection_cache_time_limit = 0\n")
    srv = fake(host="::1")
    qid, [r] = send(instance, ["a@example.com"], f"[::1]:{srv.port}")
    assert r["status"] == "sent", r
    assert r["relay"] == f"::1[::1]:{srv.port}"
    [session] = srv.wait_sessions(1, timeout=15)
    assert session["peer"] == "::1"


def test_bind_address_not_on_this_host_defers(instance, fake):
    """bind() fails (EADDRNOTAVAIL) before any packet is sent: the attempt
    fails as a refused connection does."""
    if is_local(NOT_HERE4):
        pytest.skip(f"{NOT_HERE4} is an address of this host")
    start_agent(instance, f"smtp_bind_address = {NOT_HERE4}\n")
    srv = fake()
    qid, [r] = send(instance, ["a@example.com"], hop(srv))
    why = (f"connect to 127.0.0.1[127.0.0.1]:{srv.port}: bind to "
           f"{NOT_HERE4}: Cannot assign requested address")
    assert r["status"] == "deferred", r
    assert r["dsn"] == "4.4.1"
    assert r["destination_failure"] == "1"
    assert r["relay"] == "none"
    assert r["text"] == why
    instance.wait_log(rf"{qid}: to=<a@example\.com>, relay=none, .*"
                      rf"dsn=4\.4\.1, status=deferred \({re.escape(why)}\)")
    assert srv.sessions == []


@pytest.mark.parametrize("param, value, family", [
    ("smtp_bind_address", "not-an-address", "IPv4"),
    ("smtp_bind_address", "::1", "IPv4"),
    ("smtp_bind_address6", "127.0.0.1", "IPv6"),
])
def test_bad_bind_address_is_fatal_and_the_mail_waits(param, value, family):
    """The agent logs the bad value and exits before it takes the request;
    qmgr defers the mail after ipc_timeout, and it stays queued."""
    inst = make_instance(None)
    try:
        inst.write_main_cf("myhostname = client.example.org\n"
                           "mydestination =\n"
                           f"relayhost = [127.0.0.1]:{free_port()}\n"
                           "ipc_timeout = 1s\n"
                           f"{param} = {value}\n")
        inst.write_master_cf(agent_master_cf(
            f"qmgr unix n - n 300 1 {BIN}/qmgr\n"))
        inst.start()
        qid = queue_message(inst, ["a@example.com"], into_active=False)
        inst.wait_log(rf"postino/smtp\[\d+\]: fatal: {param}: not an "
                      rf"{family} address: \"{re.escape(value)}\"")
        inst.wait_log(rf"{qid}: to=<a@example\.com>, relay=none, .*"
                      r"dsn=4\.3\.0, status=deferred \(delivery agent timed "
                      r"out\)", timeout=20)
        # The log line comes first, the move to deferred/ right after.
        wait_until((inst.queue / "deferred" / qid).exists, 5,
                   f"{qid} in deferred/")
    finally:
        finish_instance(inst)


# ---- a Postino peer: TLS and DSN seen in its queue file ------------------

@pytest.fixture
def peer():
    inst = make_instance(None)
    try:
        ports = start_smtpd(inst)
        inst.ports = ports
        yield inst
    finally:
        finish_instance(inst)


def test_starttls_and_dsn_to_postino_peer(agent, peer):
    rcpts = [("alice@mx.example.net", "rfc822;first@example.net",
              "SUCCESS,DELAY")]
    qid, [r] = send(agent, rcpts, f"[127.0.0.1]:{peer.ports.smtp}",
                    dsn_envid="ENV-42", dsn_ret="FULL")
    assert r["status"] == "sent", r
    assert re.match(r"250 2\.0\.0 Ok: queued as \w+$", r["text"]), r
    agent.wait_log(r"(Untrusted|Anonymous) TLS connection established to "
                   rf"127\.0\.0\.1\[127\.0\.0\.1\]:{peer.ports.smtp}: TLSv1\.[23]"
                   r" with cipher ")
    files = wait_queued(peer)
    [qf] = files.values()
    assert qf.recipients == [("alice@mx.example.net",
                              "rfc822;first@example.net", "SUCCESS,DELAY")]
    assert qf.attributes.get("dsn_envid") == "ENV-42"
    assert qf.attributes.get("dsn_ret") == "FULL"
    assert "using TLS" in qf.header()
    assert "Received: from client.example.org" in qf.header()


def test_connection_reuse_with_postino_peer(agent, peer):
    """Two requests in a row for the same nexthop: one TLS session, the
    peer logs one connection and two messages."""
    nexthop = f"[127.0.0.1]:{peer.ports.smtp}"
    qid1, [r1] = send(agent, ["alice@mx.example.net"], nexthop)
    qid2, [r2] = send(agent, ["bob@mx.example.net"], nexthop)
    assert r1["status"] == r2["status"] == "sent", (r1, r2)
    wait_queued(peer, 2)
    peer.wait_log(r"disconnect from localhost\[127\.0\.0\.1\]")
    assert len(re.findall(r"smtpd\[\d+\]: connect from ", peer.log())) == 1
    assert len(re.findall(r"TLS connection established to ",
                          agent.log())) == 1


def test_tls_verify_with_the_peer_certificate(instance, peer):
    """verify: the certificate chains to smtp_tls_CAfile and names the
    host.  [localhost] is found in /etc/hosts (native lookup), never in
    DNS."""
    start_agent(instance, "smtp_tls_security_level = verify\n"
                f"smtp_tls_CAfile = {peer.etc / 'cert.pem'}\n"
                "smtp_host_lookup = native\n")
    qid, [r] = send(instance, ["alice@mx.example.net"],
                    f"[localhost]:{peer.ports.smtp}")
    assert r["status"] == "sent", r
    assert r["relay"] == f"localhost[127.0.0.1]:{peer.ports.smtp}"
    instance.wait_log(r"Verified TLS connection established to "
                      rf"localhost\[127\.0\.0\.1\]:{peer.ports.smtp}: ")


def test_tls_verify_fails_for_an_unknown_certificate(instance, peer):
    """verify without the CA: the handshake fails and there is no
    plaintext retry."""
    ca = instance.etc / "other-ca.pem"
    self_signed_certificate(ca, instance.etc / "other-key.pem")
    start_agent(instance, "smtp_tls_security_level = verify\n"
                f"smtp_tls_CAfile = {ca}\n"
                "smtp_host_lookup = native\n")
    qid, [r] = send(instance, ["alice@mx.example.net"],
                    f"[localhost]:{peer.ports.smtp}")
    assert r["status"] == "deferred", r
    assert r["dsn"] == "4.7.5"
    assert r["text"] == ("Cannot start TLS: handshake failure with "
                         "localhost[127.0.0.1]")
    time.sleep(0.5)
    assert not os.listdir(peer.queue / "incoming")


def test_tls_none_sends_plaintext(instance, peer):
    start_agent(instance, "smtp_tls_security_level = none\n")
    qid, [r] = send(instance, ["alice@mx.example.net"],
                    f"[127.0.0.1]:{peer.ports.smtp}")
    assert r["status"] == "sent", r
    [qf] = wait_queued(peer).values()
    assert "using TLS" not in qf.header()


def test_failed_tls_handshake_is_retried_in_plaintext(agent, fake):
    srv = fake(ehlo=["PIPELINING", "STARTTLS", "8BITMIME"])
    qid, [r] = send(agent, ["a@example.com"], hop(srv))
    assert r["status"] == "sent", r
    first, second = srv.wait_sessions(2, timeout=15)
    assert "STARTTLS" in first["commands"]
    assert "STARTTLS" not in second["commands"]
    assert second["data"]
    agent.wait_log(rf"{qid}: Cannot start TLS: handshake failure with "
                   r"127\.0\.0\.1\[127\.0\.0\.1\]; retrying in plaintext")


def test_tls_encrypt_without_starttls_defers(instance, fake):
    start_agent(instance, "smtp_tls_security_level = encrypt\n")
    srv = fake()
    qid, [r] = send(instance, ["a@example.com"], hop(srv))
    assert r["status"] == "deferred", r
    assert r["text"] == ("TLS is required, but was not offered by host "
                         "127.0.0.1[127.0.0.1]")
    assert r["dsn"] == "4.7.4"
    assert "diagnostic" not in r


# ---- Postfix's smtp-sink ---------------------------------------------------

@pytest.fixture
def sink(tmp_path):
    if SMTP_SINK is None:
        pytest.skip("no smtp-sink")

    def start(*options):
        port = free_port()
        argv = [SMTP_SINK, *options]
        if IS_ROOT:
            argv += ["-u", "nobody"]
        argv += [f"127.0.0.1:{port}", "10"]
        log = open(tmp_path / f"sink-{port}.log", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        procs.append((proc, log))
        deadline = time.monotonic() + 10
        import socket
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return port
    procs = []
    yield start
    for proc, log in procs:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_smtp_sink_delivery(agent, sink):
    port = sink()
    qid, results = send(agent, [f"r{i}@example.com" for i in range(5)],
                        f"[127.0.0.1]:{port}")
    assert [r["status"] for r in results] == ["sent"] * 5, results


def test_smtp_sink_refuses_recipients(agent, sink):
    port = sink("-f", "RCPT")
    qid, [r] = send(agent, ["a@example.com"], f"[127.0.0.1]:{port}")
    assert r["status"] == "bounced", r
    assert r["diagnostic"].startswith("smtp; 5")


def test_smtp_sink_421_at_mail(agent, sink):
    port = sink("-Q", "MAIL")
    qid, [r] = send(agent, ["a@example.com"], f"[127.0.0.1]:{port}")
    assert r["status"] == "deferred", r
    assert r["destination_failure"] == "1"
    assert "421" in r["text"]


def test_smtp_sink_disconnect_after_data(agent, sink):
    port = sink("-q", "DATA")
    qid, [r] = send(agent, ["a@example.com"], f"[127.0.0.1]:{port}")
    assert r["status"] == "deferred", r
    assert r["text"].startswith("lost connection with 127.0.0.1[127.0.0.1] "
                                "while"), r


# ---- MX routing, against dnsmasq in a network namespace -------------------
#
# The whole instance runs inside the namespace, so the agent's resolver
# reads the namespace's resolv.conf, which points at the test's dnsmasq;
# no query leaves it.  mx1.multi.test (192.0.2.31) refuses connections,
# mx2.multi.test (192.0.2.32) is a scripted server on port 25; 127.0.0.1
# is this host (inet_interfaces = loopback-only).

MX1, MX2, MX3, MX6 = "192.0.2.31", "192.0.2.32", "192.0.2.33", "2001:db8::32"
MX4, MX5 = "192.0.2.34", "192.0.2.35"   # 451 and 550 at MAIL
SRC4, SRC6 = "192.0.2.40", "2001:db8::40"  # no server: client addresses
DNS_RECORDS = [
    f"--host-record=mx4.fail.test,{MX4}",
    f"--host-record=mx5.fail.test,{MX5}",
    "--mx-host=tempmail.test,mx4.fail.test,10",
    "--mx-host=tempmail.test,mx2.multi.test,20",
    "--mx-host=hardmail.test,mx5.fail.test,10",
    "--mx-host=hardmail.test,mx2.multi.test,20",
    "--mx-host=allfail.test,mx1.multi.test,10",
    "--mx-host=allfail.test,mx4.fail.test,20",
    "--mx-host=lasthard.test,mx1.multi.test,10",
    "--mx-host=lasthard.test,mx5.fail.test,20",
    "--mx-host=equal.test,mx2.multi.test,10",
    "--mx-host=equal.test,mx3.equal.test,10",
    f"--host-record=mx3.equal.test,{MX3}",
    "--mx-host=v6only.test,mx6.v6only.test,10",
    "--mx-host=mixed.test,mx6.v6only.test,10",
    "--mx-host=mixed.test,mx2.multi.test,20",
    f"--host-record=mx6.v6only.test,{MX6}",
    "--mx-host=multi.test,mx1.multi.test,10",
    "--mx-host=multi.test,mx2.multi.test,20",
    f"--host-record=mx1.multi.test,{MX1}",
    f"--host-record=mx2.multi.test,{MX2}",
    "--dns-rr=null.test,15,000000",                 # MX 0 "."
    "--mx-host=loop.test,mx.loop.test,10",
    "--host-record=mx.loop.test,127.0.0.1",
    "--mx-host=self.test,client.example.org,10",    # myhostname
    "--mx-host=backup.test,mx2.multi.test,10",
    "--mx-host=backup.test,mx.loop.test,20",
    "--mx-host=primary.test,mx.loop.test,5",
    "--mx-host=primary.test,mx2.multi.test,20",
    f"--host-record=nomx.test,{MX2}",
    "--server=/tempfail.test/127.0.0.2",            # never answers
    "--local=/test/",                               # the rest: NXDOMAIN
]
FAKE_SMTP = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "fake_smtp.py")


def _netns_available():
    return IS_ROOT and shutil.which("ip") and shutil.which("dnsmasq")


@pytest.fixture(scope="module")
def mxns(tmp_path_factory):
    if not _netns_available():
        pytest.skip("needs root, ip(8) and dnsmasq")
    from netns import Namespace, NameServer, wait_for, read
    workdir = str(tmp_path_factory.mktemp("smtp-netns"))
    try:
        ns = Namespace(workdir, (MX1, MX2, MX3, MX4, MX5, SRC4),
                       (MX6, SRC6))
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot make a network namespace: {e}")
    try:
        with open(f"{ns.etc}/resolv.conf", "a") as f:
            f.write("options timeout:1 attempts:1\n")
        ns.dns = NameServer(ns, DNS_RECORDS, blackhole=True)
        ns.sessions_path = os.path.join(workdir, "mx2-sessions.jsonl")
        out = os.path.join(workdir, "mx2.out")
        ns.spawn([sys.executable, FAKE_SMTP, MX2, "25", json.dumps(
            {"ehlo": ["PIPELINING", "8BITMIME", "DSN"]}), ns.sessions_path],
            out)
        wait_for(lambda: "listening" in read(out), "scripted server")
        for addr, opts in ((MX3, {}), (MX4, {"mail": "451 4.3.0 try later"}),
                           (MX5, {"mail": "550 5.7.1 go away"})):
            out = os.path.join(workdir, f"{addr}.out")
            ns.spawn([sys.executable, FAKE_SMTP, addr, "25", json.dumps(
                {"ehlo": ["PIPELINING", "8BITMIME"], **opts}),
                os.path.join(workdir, f"{addr}-sessions.jsonl")], out)
            wait_for(lambda: "listening" in read(out), f"server on {addr}")
        out6 = os.path.join(workdir, "mx6.out")
        ns.sessions6_path = os.path.join(workdir, "mx6-sessions.jsonl")
        ns.spawn([sys.executable, FAKE_SMTP, MX6, "25", json.dumps(
            {"ehlo": ["PIPELINING", "8BITMIME"]}), ns.sessions6_path], out6)
        wait_for(lambda: "listening" in read(out6), "scripted IPv6 server")
        yield ns
    finally:
        ns.delete()


@pytest.fixture(scope="module", params=instance_modes())
def mxagent(request, mxns):
    from netns import make_namespace_instance
    inst = make_namespace_instance(mxns, instance_user(request.param))
    try:
        start_agent(inst, "smtp_tls_security_level = none\n"
                    "inet_protocols = all\n")
        yield inst
    finally:
        finish_instance(inst)


def mx2_sessions(ns):
    from netns import read
    return [json.loads(l) for l in read(ns.sessions_path).splitlines()]


def test_mx_connection_refused_then_next_mx(mxagent, mxns):
    before = len(mx2_sessions(mxns))
    qid, [r] = send(mxagent, ["a@multi.test"], "multi.test")
    assert r["status"] == "sent", r
    assert r["relay"] == f"mx2.multi.test[{MX2}]:25"
    assert r["remote_mta"] == "dns; mx2.multi.test"
    mxagent.wait_log(rf"connect to mx1\.multi\.test\[{MX1}\]:25: "
                     "Connection refused")
    deadline = time.monotonic() + 10
    while len(mx2_sessions(mxns)) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "RCPT TO:<a@multi.test>" in mx2_sessions(mxns)[-1]["commands"]


def test_null_mx_bounces(mxagent):
    qid, [r] = send(mxagent, ["a@null.test"], "null.test")
    assert r["status"] == "bounced", r
    assert r["dsn"] == "5.1.10"
    assert r["text"] == "Domain null.test does not accept mail (nullMX)"


@pytest.mark.parametrize("domain", ["loop.test", "self.test", "primary.test"])
def test_mx_pointing_to_this_host_loops_back(mxagent, domain):
    qid, [r] = send(mxagent, [f"a@{domain}"], domain)
    assert r["status"] == "deferred", r
    assert r["text"] == f"mail for {domain} loops back to myself"
    mxagent.wait_log(rf"{qid}: to=<a@{re.escape(domain)}>, relay=none, .*"
                     rf"status=deferred \(mail for {re.escape(domain)} "
                     r"loops back to myself\)")


def test_less_preferred_mx_that_is_this_host_is_dropped(mxagent):
    qid, [r] = send(mxagent, ["a@backup.test"], "backup.test")
    assert r["status"] == "sent", r
    assert r["relay"] == f"mx2.multi.test[{MX2}]:25"


def test_nxdomain_bounces(mxagent):
    qid, [r] = send(mxagent, ["a@missing.test"], "missing.test")
    assert r["status"] == "bounced", r
    assert r["dsn"] == "5.1.2"
    assert r["text"] == ("Host or domain name not found. Name service error "
                         "for name=missing.test type=MX: Host not found")


def test_temporary_dns_failure_defers(mxagent):
    qid, [r] = send(mxagent, ["a@tempfail.test"], "tempfail.test")
    assert r["status"] == "deferred", r
    assert r["dsn"] == "4.4.3"
    assert r["destination_failure"] == "1"
    assert r["text"].endswith("type=MX: Host not found, try again"), r


def test_domain_without_mx_uses_its_address(mxagent):
    qid, [r] = send(mxagent, ["a@nomx.test"], "nomx.test")
    assert r["status"] == "sent", r
    assert r["relay"] == f"nomx.test[{MX2}]:25"


def test_bracketed_nexthop_skips_the_mx_lookup(mxagent, mxns):
    before = len(mxns.dns.log())
    qid, [r] = send(mxagent, ["a@multi.test"], "[mx2.multi.test]:25")
    assert r["status"] == "sent", r
    assert r["relay"] == f"mx2.multi.test[{MX2}]:25"
    queries = mxns.dns.log()[before:]
    assert "query[A] mx2.multi.test" in queries
    assert "query[MX]" not in queries


def test_ipv6_mx(mxagent):
    qid, [r] = send(mxagent, ["a@v6only.test"], "v6only.test")
    assert r["status"] == "sent", r
    assert r["relay"] == f"mx6.v6only.test[{MX6}]:25"


def test_equal_preferences_are_shuffled(mxagent):
    """Two MX hosts of preference 10: over a dozen fresh routes both are
    tried first.  (A request for another domain in between closes the
    cached session, so that each delivery looks the MX list up again.)"""
    relays = set()
    for i in range(12):
        qid, [r] = send(mxagent, [f"a{i}@equal.test"], "equal.test")
        assert r["status"] == "sent", r
        relays.add(r["relay"])
        send(mxagent, ["x@nomx.test"], "nomx.test")
    assert relays == {f"mx2.multi.test[{MX2}]:25",
                      f"mx3.equal.test[{MX3}]:25"}


@pytest.mark.parametrize("domain, reply", [
    ("tempmail.test", "451 4.3.0 try later"),
    ("hardmail.test", "550 5.7.1 go away"),
])
def test_mail_refused_by_first_mx_then_next(mxagent, domain, reply):
    qid, [r] = send(mxagent, [f"a@{domain}"], domain)
    assert r["status"] == "sent", r
    assert r["relay"] == f"mx2.multi.test[{MX2}]:25"
    mxagent.wait_log(rf"{qid}: host mx[45]\.fail\.test\[192\.0\.2\.3[45]\] "
                     rf"said: {reply} \(in reply to MAIL FROM command\)")


def test_every_mx_failing_defers_with_the_last_reason(mxagent):
    qid, [r] = send(mxagent, ["a@allfail.test"], "allfail.test")
    assert r["status"] == "deferred", r
    assert r["destination_failure"] == "1"
    assert r["text"] == (f"host mx4.fail.test[{MX4}] said: 451 4.3.0 try "
                         "later (in reply to MAIL FROM command)")
    assert r["relay"] == f"mx4.fail.test[{MX4}]:25"
    assert r["diagnostic"] == "smtp; 451 4.3.0 try later"


def test_5xx_at_mail_of_the_last_mx_bounces(mxagent):
    qid, [r] = send(mxagent, ["a@lasthard.test"], "lasthard.test")
    assert r["status"] == "bounced", r
    assert r["dsn"] == "5.7.1"
    assert "destination_failure" not in r


# ---- the local address in the namespace: inet_interfaces and a failed bind

def sessions_of(path):
    from netns import read
    return [json.loads(l) for l in read(path).splitlines()]


def new_session(path, before, timeout=10):
    """The first session the scripted server logged after the before
    first ones."""
    deadline = time.monotonic() + timeout
    while len(sessions_of(path)) <= before:
        if time.monotonic() > deadline:
            raise AssertionError(f"no new session in {path}")
        time.sleep(0.05)
    return sessions_of(path)[before]


@pytest.fixture
def bound_agent(mxns):
    """start(main_cf): an agent in the namespace (as root), with
    SRC4 and SRC6 as its inet_interfaces and no session cache."""
    from netns import make_namespace_instance
    made = []

    def start(main_cf=""):
        inst = make_namespace_instance(mxns)
        made.append(inst)
        start_agent(inst, "smtp_tls_security_level = none\n"
                    "inet_protocols = all\n"
                    f"inet_interfaces = {SRC4}, {SRC6}\n"
                    "smtp_connection_cache_time_limit = 0\n" + main_cf)
        return inst
    yield start
    for inst in made:
        finish_instance(inst)


def test_the_one_inet_interfaces_address_of_a_family_is_the_source(
        bound_agent, mxns):
    inst = bound_agent()
    for path, domain, source in ((mxns.sessions_path, "nomx.test", SRC4),
                                 (mxns.sessions6_path, "v6only.test", SRC6)):
        before = len(sessions_of(path))
        qid, [r] = send(inst, [f"a@{domain}"], domain)
        assert r["status"] == "sent", r
        assert new_session(path, before)["peer"] == source, domain


def test_loopback_inet_interfaces_leave_the_choice_to_the_kernel(mxns):
    """inet_interfaces = 127.0.0.1 is not used as a source: the kernel
    sends from the server's own address, which is on lo too."""
    from netns import make_namespace_instance
    inst = make_namespace_instance(mxns)
    try:
        start_agent(inst, "smtp_tls_security_level = none\n"
                    "inet_interfaces = 127.0.0.1\n"
                    "smtp_connection_cache_time_limit = 0\n")
        before = len(sessions_of(mxns.sessions_path))
        qid, [r] = send(inst, ["a@nomx.test"], "nomx.test")
        assert r["status"] == "sent", r
        assert new_session(mxns.sessions_path, before)["peer"] == MX2
    finally:
        finish_instance(inst)


def test_a_failed_bind_moves_on_to_the_next_mx(bound_agent, mxns):
    """smtp_bind_address6 (not in the namespace) wins over inet_interfaces
    for IPv6; IPv4 keeps SRC4.  mixed.test: the IPv6 MX fails at bind,
    the IPv4 one takes the mail; v6only.test: deferred with the bind
    error."""
    inst = bound_agent(f"smtp_bind_address6 = {NOT_HERE6}\n")
    why6 = (f"connect to mx6.v6only.test[{MX6}]:25: bind to {NOT_HERE6}: "
            "Cannot assign requested address")
    before = len(sessions_of(mxns.sessions_path))
    before6 = len(sessions_of(mxns.sessions6_path))
    qid, [r] = send(inst, ["a@mixed.test"], "mixed.test")
    assert r["status"] == "sent", r
    assert r["relay"] == f"mx2.multi.test[{MX2}]:25"
    inst.wait_log(re.escape(why6))
    assert new_session(mxns.sessions_path, before)["peer"] == SRC4
    qid, [r] = send(inst, ["a@v6only.test"], "v6only.test")
    assert r["status"] == "deferred", r
    assert r["dsn"] == "4.4.1"
    assert r["destination_failure"] == "1"
    assert r["text"] == why6
    inst.wait_log(rf"{qid}: to=<a@v6only\.test>, relay=none, .*"
                  rf"status=deferred \({re.escape(why6)}\)")
    assert len(sessions_of(mxns.sessions6_path)) == before6
