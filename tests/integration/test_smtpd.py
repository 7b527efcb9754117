"""smtpd with real clients (smtplib, swaks, openssl s_client) and raw
sockets for hostile sessions, against a real instance with cleanup; the
accepted messages are checked in the queue."""
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BIN
from smtpd_instance import (PASSWORD, RawSmtp, queued, start_smtpd,
                           wait_queued, write_file)

MESSAGE = b"Subject: test\r\nFrom: <a@example.org>\r\n\r\nbody line\r\n"
OUTSIDE = "mynetworks = 192.0.2.0/24\n"  # 127.0.0.1 is not in it


def client_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def session(port, *commands):
    """Sends each command in turn; returns the reply codes."""
    c = RawSmtp(port)
    codes = []
    for text in commands:
        codes.append(c.cmd(text)[0])
    c.close()
    return codes


# ---- the basics --------------------------------------------------------

def test_message_is_queued_with_envelope_and_logged(instance):
    ports = start_smtpd(instance)
    with smtplib.SMTP("127.0.0.1", ports.smtp, timeout=10) as s:
        code, text = s.ehlo("client.example")
        assert code == 250
        lines = text.decode().split("\n")
        assert lines[0] == "mx.example.net"
        for ext in ("PIPELINING", "SIZE 100000", "STARTTLS",
                    "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8",
                    "CHUNKING"):
            assert ext in lines, lines
        assert not any(line.startswith("AUTH") for line in lines)
        refused = s.sendmail("a@example.org", ["alice@mx.example.net"],
                             MESSAGE)
        assert refused == {}
    files = wait_queued(instance)
    (qid, qf), = files.items()
    assert qf.sender == "a@example.org"
    assert qf.addresses == ["alice@mx.example.net"] or \
        [r[0] for r in qf.recipients] == ["alice@mx.example.net"]
    assert qf.attributes["protocol"] == "ESMTP"
    assert qf.attributes["helo_name"] == "client.example"
    assert qf.attributes["client_address"] == "127.0.0.1"
    assert qf.attributes["client_name"] == "localhost"
    assert qf.content.endswith(b"Subject: test\nFrom: <a@example.org>\n\n"
                               b"body line\n")
    instance.wait_log(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 "
                      r"mail=1 rcpt=1 data=1 quit=1 commands=5")
    log = instance.log()
    assert re.search(r"postino/smtpd\[\d+\]: connect from "
                     r"localhost\[127\.0\.0\.1\]", log)
    assert re.search(rf"{qid}: client=localhost\[127\.0\.0\.1\]", log)


def test_commands_and_sequence_errors(plain_instance):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    assert c.cmd("RCPT TO:<alice@mx.example.net>") == \
        (503, ["5.5.1 Error: need MAIL command"])
    assert c.cmd("DATA")[0] == 503
    assert c.cmd("NOOP") == (250, ["2.0.0 Ok"])
    assert c.cmd("VRFY alice")[1][0].startswith("2.0.0")
    assert c.cmd("VRFY alice")[0] == 252
    assert c.cmd("EXPN staff")[0] == 502
    assert c.cmd("HELP")[0] == 214
    assert c.cmd("FOO bar") == (500, ["5.5.2 Error: command not recognized"])
    assert c.cmd("EHLO") == (501, ["5.5.4 Syntax: EHLO hostname"])
    assert c.cmd("HELO client.example") == (250, ["mx.example.net"])
    assert c.cmd("MAIL FROM:<a@example.org>") == (250, ["2.1.0 Ok"])
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 503
    assert c.cmd("MAIL FROM:a@example.org")[0] == 503
    assert c.cmd("RSET") == (250, ["2.0.0 Ok"])
    assert c.cmd("MAIL FROM:a@@example.org")[0] == 501  # no <>: as Postfix
    assert c.cmd("MAIL FROM:<a@@example.org>")[0] == 501
    assert c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")[0] == 503
    assert c.cmd("QUIT") == (221, ["2.0.0 Bye"])
    c.close()


def test_vrfy_can_be_disabled(plain_instance):
    ports = start_smtpd(plain_instance, "disable_vrfy_command = yes\n")
    assert session(ports.smtp, "VRFY alice") == [502]


def test_pipelined_session_gets_every_reply(plain_instance):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    assert c.cmd("EHLO client.example")[0] == 250  # EHLO ends a group
    c.send(b"MAIL FROM:<a@example.org>\r\n"
           b"RCPT TO:<alice@mx.example.net>\r\nRCPT TO:<nobody@mx.example.net>"
           b"\r\nRCPT TO:<bob@mx.example.net>\r\nDATA\r\n")
    assert c.reply() == (250, ["2.1.0 Ok"])
    assert c.reply() == (250, ["2.1.5 Ok"])
    code, lines = c.reply()
    assert code == 550 and lines[0].startswith("5.1.1 <nobody@mx.example.net>")
    assert c.reply() == (250, ["2.1.5 Ok"])
    assert c.reply()[0] == 354
    c.send(b"Subject: pipelined\r\n\r\n..dot\r\n.\r\nQUIT\r\n")
    code, lines = c.reply()
    assert code == 250 and lines[0].startswith("2.0.0 Ok: queued as ")
    assert c.reply()[0] == 221
    c.close()
    (qf,) = wait_queued(plain_instance).values()
    assert [r[0] for r in qf.recipients] == ["alice@mx.example.net",
                                             "bob@mx.example.net"]
    assert qf.content.endswith(b"Subject: pipelined\n\n.dot\n")


def test_input_pipelined_after_data_ends_the_session(plain_instance):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    assert c.cmd("EHLO c.example")[0] == 250
    c.send(b"MAIL FROM:<a@example.org>\r\n"
           b"RCPT TO:<alice@mx.example.net>\r\nDATA\r\nSubject: x\r\n\r\n"
           b"body\r\n.\r\n")
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 554]
    assert c.closed()
    c.close()
    assert queued(plain_instance) == {}
    plain_instance.wait_log(r"improper command pipelining after DATA")


def test_dsn_size_body_and_smtputf8_reach_the_envelope(plain_instance):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@example.org> SIZE=500 BODY=8BITMIME "
                 "RET=HDRS ENVID=id+2B1 SMTPUTF8")[0] == 250
    assert c.cmd("RCPT TO:<alice@mx.example.net> NOTIFY=SUCCESS,FAILURE "
                 "ORCPT=rfc822;alice+2Bx@example.org")[0] == 250
    assert c.cmd("RCPT TO:<bob@mx.example.net> NOTIFY=NEVER")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: dsn\r\n\r\n\xc3\xa9t\xc3\xa9\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    (qf,) = wait_queued(plain_instance).values()
    a = qf.attributes
    assert a["dsn_ret"] == "HDRS"
    assert a["dsn_envid"] == "id+1"
    assert a["encoding"] == "8bitmime"
    assert a["smtputf8"] == "1"
    assert a["size"] == "500"
    assert qf.recipients == [
        ("alice@mx.example.net", "rfc822;alice+x@example.org",
         "SUCCESS,FAILURE"),
        ("bob@mx.example.net", None, "NEVER")]


def test_8bit_address_needs_smtputf8(plain_instance):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    c.cmd("EHLO client.example")
    c.send("MAIL FROM:<j\u00f6rg@example.org>\r\n".encode())
    code, lines = c.reply()
    assert code == 553 and lines[0].startswith("5.6.7"), lines
    c.send("MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8\r\n".encode())
    assert c.reply()[0] == 250
    c.close()


# ---- CHUNKING ----------------------------------------------------------

def test_bdat_chunks_binary_clean(plain_instance):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<alice@mx.example.net>")
    chunks = [b"Subject: chunks\r\n\r\nline one\r", b"\nwith a bare\rCR\r\n",
              b".not stuffed\r\n"]
    c.send(b"BDAT %d\r\n" % len(chunks[0]) + chunks[0] +
           b"BDAT %d\r\n" % len(chunks[1]) + chunks[1])
    assert c.reply() == (250, [f"2.0.0 Ok: {len(chunks[0])} bytes"])
    assert c.reply()[0] == 250
    c.send(b"BDAT %d LAST\r\n" % len(chunks[2]) + chunks[2])
    code, lines = c.reply()
    assert code == 250 and "queued as" in lines[0]
    assert c.cmd("DATA")[0] == 503  # the transaction is over
    c.close()
    (qf,) = wait_queued(plain_instance).values()
    assert qf.content.endswith(b"Subject: chunks\n\nline one\nwith a bare\r"
                               b"CR\n.not stuffed\n")


def test_bdat_without_recipients_is_read_and_refused(plain_instance):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@example.org>")
    assert c.cmd("RCPT TO:<nobody@mx.example.net>")[0] == 550
    c.send(b"BDAT 12\r\nNOOP\r\nNOOP\r\nBDAT 4 LAST\r\nQUIT")
    assert c.reply()[0] == 554
    assert c.reply()[0] == 554
    assert c.cmd("NOOP")[0] == 250  # in step with the client
    # BDAT then DATA in one transaction is refused.
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<alice@mx.example.net>")
    c.send(b"BDAT 3\r\nabc")
    assert c.reply()[0] == 250
    assert c.cmd("DATA")[0] == 503
    c.close()
    assert queued(plain_instance) == {}


# ---- TLS and AUTH ------------------------------------------------------

SASL_ON = "smtpd_sasl_auth_enable = yes\n"


def test_starttls_then_auth_plain_and_login(instance):
    ports = start_smtpd(instance, SASL_ON)
    with smtplib.SMTP("127.0.0.1", ports.smtp, timeout=10) as s:
        s.ehlo("client.example")
        assert not s.has_extn("auth")
        code, text = s.docmd("AUTH", "PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=")
        assert code == 538 and text.startswith(b"5.7.11")
        s.starttls(context=client_tls())
        s.ehlo("client.example")
        assert s.has_extn("auth")
        assert "PLAIN" in s.esmtp_features["auth"]
        with pytest.raises(smtplib.SMTPAuthenticationError) as bad:
            s.login("alice", "wrong password")
        assert bad.value.smtp_code == 535
        assert bad.value.smtp_error.startswith(b"5.7.8")
        s.user, s.password = "alice", PASSWORD
        code, _ = s.auth("PLAIN", s.auth_plain)
        assert code == 235
        code, text = s.docmd("AUTH", "LOGIN")
        assert code == 503 and text.startswith(b"5.5.1")
        s.sendmail("alice@mx.example.net", ["someone@remote.example"],
                   MESSAGE)
    with smtplib.SMTP("127.0.0.1", ports.smtp, timeout=10) as s:
        s.starttls(context=client_tls())
        s.ehlo("client.example")
        s.user, s.password = "bob", PASSWORD
        assert s.auth("LOGIN", s.auth_login, initial_response_ok=False)[0] \
            == 235
    (qf,) = wait_queued(instance).values()
    assert qf.attributes["protocol"] == "ESMTPSA"
    assert qf.attributes["sasl_username"] == "alice"
    assert qf.attributes["sasl_method"] == "PLAIN"
    assert qf.attributes["tls"].startswith("TLSv1.")
    log = instance.log()
    assert re.search(r"Anonymous TLS connection established from "
                     r"localhost\[127\.0\.0\.1\]: TLSv1\.\d with cipher", log)
    assert re.search(r"client=localhost\[127\.0\.0\.1\], sasl_method=PLAIN, "
                     r"sasl_username=alice", log)
    assert re.search(r"warning: localhost\[127\.0\.0\.1\]: SASL LOGIN "
                     r"authentication failed", log) or \
        re.search(r"SASL \w+ authentication failed", log)
    assert "correct horse" not in log and "wrong password" not in log


def test_starttls_discards_pipelined_plaintext(plain_instance):
    ports = start_smtpd(plain_instance, SASL_ON)
    c = RawSmtp(ports.smtp)
    c.cmd("EHLO client.example")
    c.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
    assert c.reply()[0] == 220
    tls = client_tls().wrap_socket(c.sock, server_hostname="localhost")
    f = tls.makefile("rb")
    tls.sendall(b"RCPT TO:<alice@mx.example.net>\r\n")
    line = f.readline()
    assert line.startswith(b"503 5.5.1"), line  # the MAIL was dropped
    # After the handshake the client starts over with EHLO.
    tls.sendall(b"MAIL FROM:<a@example.org>\r\n")
    assert f.readline().startswith(b"503 5.5.1 Error: send HELO/EHLO first")
    tls.sendall(b"EHLO client.example\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    tls.sendall(b"MAIL FROM:<a@example.org>\r\n")
    assert f.readline().startswith(b"250 2.1.0")
    # An AUTH response line over 12288 octets (RFC 4954 4) is refused.
    tls.sendall(b"AUTH PLAIN\r\n")
    assert f.readline().startswith(b"503 5.5.1")  # inside a transaction
    tls.sendall(b"RSET\r\nAUTH PLAIN\r\n")
    assert f.readline().startswith(b"250")
    assert f.readline().startswith(b"334")
    tls.sendall(b"A" * 13000 + b"\r\n")
    assert f.readline().startswith(b"500 5.5.6")
    tls.close()
    plain_instance.wait_log(r"warning: localhost\[127\.0\.0\.1\]: discarding "
                            r"\d+ bytes of pipelined input after STARTTLS")


def test_openssl_s_client_starttls(plain_instance):
    ports = start_smtpd(plain_instance, SASL_ON)
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{ports.smtp}",
         "-starttls", "smtp", "-quiet"],
        input=b"EHLO client.example\r\nQUIT\r\n", capture_output=True,
        timeout=20)
    assert b"250-AUTH PLAIN LOGIN" in result.stdout, result
    assert b"221 2.0.0 Bye" in result.stdout


def test_swaks_submission_with_auth(plain_instance):
    ports = start_smtpd(plain_instance)
    result = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(ports.submission),
         "--tls", "--auth", "LOGIN", "--auth-user", "bob",
         "--auth-password", PASSWORD, "--from", "bob@mx.example.net",
         "--to", "friend@remote.example", "--helo", "client.example"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    (qf,) = wait_queued(plain_instance).values()
    assert qf.attributes["sasl_username"] == "bob"
    assert [r[0] for r in qf.recipients] == ["friend@remote.example"]


def test_submission_requires_starttls_then_auth(instance):
    ports = start_smtpd(instance)
    c = RawSmtp(ports.submission)
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@example.org>") == \
        (530, ["5.7.0 Must issue a STARTTLS command first"])
    c.close()
    with smtplib.SMTP("127.0.0.1", ports.submission, timeout=10) as s:
        s.starttls(context=client_tls())
        s.ehlo("client.example")
        code, text = s.docmd("MAIL", "FROM:<alice@mx.example.net>")
        assert (code, text) == (530, b"5.7.0 Authentication required")
        s.login("alice", PASSWORD)
        s.sendmail("alice@mx.example.net", ["x@remote.example"], MESSAGE)
    (qf,) = wait_queued(instance).values()
    assert qf.attributes["protocol"] == "ESMTPSA"


def test_submissions_implicit_tls(plain_instance):
    ports = start_smtpd(plain_instance)
    with smtplib.SMTP_SSL("127.0.0.1", ports.submissions, timeout=10,
                          context=client_tls()) as s:
        s.ehlo("client.example")
        assert not s.has_extn("starttls")
        s.login("alice", PASSWORD)
        s.sendmail("alice@mx.example.net", ["x@remote.example"], MESSAGE)
    (qf,) = wait_queued(plain_instance).values()
    assert qf.attributes["protocol"] == "ESMTPSA"
    assert qf.attributes["tls"].startswith("TLSv1.")


# ---- relay control and recipients --------------------------------------

RELAY_TRICKS = [
    "victim@remote.example",
    "victim%remote.example@mx.example.net",
    "victim%remote.example@MX.Example.NET",
    "@mx.example.net:victim@remote.example",
    "@mx.example.net,@localhost:victim@remote.example",
    '"victim@remote.example"@mx.example.net',
    "remote.example!victim@mx.example.net",
    "victim@remote.example.",
    "victim@REMOTE.example",
    "victim@[192.0.2.1]",
    "victim%remote.example@example.net",
]


def test_relay_tricks_are_refused_from_outside(plain_instance):
    ports = start_smtpd(plain_instance, OUTSIDE)
    c = RawSmtp(ports.smtp)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@example.org>")
    for addr in RELAY_TRICKS:
        code, lines = c.cmd(f"RCPT TO:<{addr}>")
        assert code == 554, (addr, lines)
        assert re.fullmatch(r"5\.7\.1 <.*>: Relay access denied", lines[0]), \
            (addr, lines)
    # What is ours is accepted, whatever the case or a trailing dot.
    for addr in ("alice@mx.example.net", "ALICE@MX.EXAMPLE.NET.",
                 "carol@example.net", "anyone@relay.example",
                 "anyone@sub.relay.example", "Postmaster",
                 "@elsewhere.example:bob@mx.example.net"):
        code, lines = c.cmd(f"RCPT TO:<{addr}>")
        assert code == 250, (addr, lines)
    c.close()
    plain_instance.wait_log(
        r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 "
        r"<victim@remote\.example>: Relay access denied; "
        r"from=<a@example\.org> to=<victim@remote\.example> proto=ESMTP "
        r"helo=<client\.example>")


def test_mynetworks_may_relay(plain_instance):
    ports = start_smtpd(plain_instance,
                        "mynetworks = 10.0.0.0/8 [::1]/128 127.0.0.1/32\n")
    assert session(ports.smtp, "EHLO c.example", "MAIL FROM:<a@example.org>",
                   "RCPT TO:<x@remote.example>") == [250, 250, 250]


def test_unknown_recipients_are_rejected_at_rcpt(plain_instance):
    ports = start_smtpd(plain_instance, OUTSIDE)
    c = RawSmtp(ports.smtp)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@example.org>")
    assert c.cmd("RCPT TO:<nobody@mx.example.net>") == (550, [
        "5.1.1 <nobody@mx.example.net>: Recipient address rejected: "
        "User unknown in local recipient table"])
    assert c.cmd("RCPT TO:<dave@example.net>") == (550, [
        "5.1.1 <dave@example.net>: Recipient address rejected: "
        "User unknown in virtual mailbox table"])
    assert c.cmd("RCPT TO:<carol@example.net>")[0] == 250
    c.close()


def test_table_error_defers_never_rejects(plain_instance):
    ports = start_smtpd(plain_instance,
                        "local_recipient_maps = hash:/nonexistent/users\n")
    codes = session(ports.smtp, "EHLO c.example", "MAIL FROM:<a@example.org>",
                    "RCPT TO:<alice@mx.example.net>")
    assert codes == [250, 250, 451]


def test_restrictions_and_access_tables(plain_instance):
    access = write_file(plain_instance, "access",
                        "spammer@example.org REJECT go away\n"
                        "friend@example.org OK\n"
                        "blocked@mx.example.net 550 5.7.2 not here\n")
    ports = start_smtpd(
        plain_instance,
        OUTSIDE +
        f"smtpd_sender_restrictions = check_sender_access texthash:{access}, "
        "reject_non_fqdn_sender\n"
        f"smtpd_recipient_restrictions = check_recipient_access "
        f"texthash:{access}\n"
        "smtpd_helo_restrictions = reject_invalid_helo_hostname\n")
    c = RawSmtp(ports.smtp)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<spammer@example.org>")
    assert c.cmd("RCPT TO:<alice@mx.example.net>") == (554, [
        "5.7.1 <spammer@example.org>: Sender address rejected: go away"])
    c.cmd("RSET")
    c.cmd("MAIL FROM:<joe@localhost>")
    code, lines = c.cmd("RCPT TO:<alice@mx.example.net>")
    assert code == 504 and "need fully-qualified address" in lines[0]
    c.cmd("RSET")
    c.cmd("MAIL FROM:<friend@example.org>")
    assert c.cmd("RCPT TO:<blocked@mx.example.net>") == (550, [
        "5.7.2 <blocked@mx.example.net>: Recipient address rejected: "
        "not here"])
    assert c.cmd("RCPT TO:<bob@mx.example.net>")[0] == 250
    c.cmd("RSET")
    c.cmd("EHLO bad_host..name")
    c.cmd("MAIL FROM:<friend@example.org>")
    code, lines = c.cmd("RCPT TO:<bob@mx.example.net>")
    assert code == 501 and "Helo command rejected: Invalid name" in lines[0]
    c.close()


def test_client_and_helo_restrictions(plain_instance):
    clients = write_file(plain_instance, "clients",
                         "127.0.0.1 REJECT no thanks\n")
    helos = write_file(plain_instance, "helos",
                       "bad.example 450 4.7.1 try later\n")
    ports = start_smtpd(
        plain_instance,
        f"smtpd_helo_restrictions = check_helo_access texthash:{helos}, "
        "reject_non_fqdn_helo_hostname\n"
        "smtpd_recipient_restrictions = reject_non_fqdn_recipient\n")
    c = RawSmtp(ports.smtp)
    c.cmd("HELO sub.bad.example")
    c.cmd("MAIL FROM:<a@example.org>")
    assert c.cmd("RCPT TO:<alice@mx.example.net>") == (450, [
        "4.7.1 <sub.bad.example>: Helo command rejected: try later"])
    c.cmd("RSET")
    c.cmd("HELO localhost")
    c.cmd("MAIL FROM:<a@example.org>")
    code, lines = c.cmd("RCPT TO:<alice@mx.example.net>")
    assert code == 504 and "need fully-qualified hostname" in lines[0]
    c.cmd("RSET")
    c.cmd("HELO client.example")
    c.cmd("MAIL FROM:<a@example.org>")
    code, lines = c.cmd("RCPT TO:<alice@localhost>")
    assert code == 504 and "Recipient address rejected: need fully-" \
        "qualified address" in lines[0]
    assert c.cmd("RCPT TO:<alice@mx.example.net>")[0] == 250
    c.close()
    plain_instance.write_main_cf(
        plain_instance.main_cf_text("")
        + (plain_instance.etc / "main.cf").read_text().split(
            "inet_protocols = ipv4\n", 1)[1]
        + f"smtpd_client_restrictions = check_client_access "
          f"texthash:{clients}\n")
    assert plain_instance.postino("reload").returncode == 0
    plain_instance.wait_log(r"reload")
    time.sleep(0.5)
    c = RawSmtp(ports.smtp)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@example.org>")
    assert c.cmd("RCPT TO:<alice@mx.example.net>") == (554, [
        "5.7.1 <localhost[127.0.0.1]>: Client host rejected: no thanks"])
    c.close()


def test_unknown_restriction_is_a_configuration_error(plain_instance):
    ports = start_smtpd(plain_instance,
                        "smtpd_recipient_restrictions = reject_bogus_thing\n")
    codes = session(ports.smtp, "EHLO c.example", "MAIL FROM:<a@example.org>",
                    "RCPT TO:<alice@mx.example.net>")
    assert codes == [250, 250, 451]
    log = plain_instance.wait_log(r"reject_bogus_thing.*")[0]
    assert "unknown restriction" in plain_instance.log()


def test_relay_restrictions_without_a_guard_defer_everything(plain_instance):
    ports = start_smtpd(plain_instance,
                        "smtpd_relay_restrictions = permit_mynetworks\n")
    codes = session(ports.smtp, "EHLO c.example", "MAIL FROM:<a@example.org>",
                    "RCPT TO:<alice@mx.example.net>")
    assert codes == [250, 250, 451]
    plain_instance.wait_log(r"must contain reject_unauth_destination")


# ---- limits and hostile input ------------------------------------------

def start_transaction(c):
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<alice@mx.example.net>")[0] == 250


def test_size_limit_at_mail_and_in_data(plain_instance):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<a@example.org> SIZE=200000") == \
        (552, ["5.3.4 Message size exceeds fixed limit"])
    assert c.cmd("MAIL FROM:<a@example.org> SIZE=1000")[0] == 250
    c.cmd("RCPT TO:<alice@mx.example.net>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: big\r\n\r\n" + (b"x" * 900 + b"\r\n") * 150 + b".\r\n")
    assert c.reply() == (552, ["5.3.4 Error: message file too big"])
    assert c.cmd("NOOP")[0] == 250  # the connection is kept
    c.close()
    assert queued(plain_instance) == {}


def test_overlong_command_line(plain_instance):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    c.send(b"NOOP " + b"x" * 5000 + b"\r\n")
    assert c.reply() == (500, ["5.5.2 Error: line too long"])
    assert c.cmd("NOOP")[0] == 250  # not split into two commands
    c.close()


def test_overlong_data_line_is_not_queued(plain_instance):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    start_transaction(c)
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: long\r\n\r\n" + b"y" * 999 + b"\r\n.\r\n")
    code, lines = c.reply()
    assert code == 554 and lines[0].startswith("5.6.0"), lines
    c.cmd("RSET")
    start_transaction(c)
    c.cmd("DATA")
    c.send(b"Subject: ok\r\n\r\n" + b"y" * 998 + b"\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    assert len(wait_queued(plain_instance)) == 1


@pytest.mark.parametrize("line,expect", [
    (b"NOOP\n", "5.5.2 Error: bare <LF> received"),
    (b"NOOP\rx\r\n", "5.5.2 Error: bare <CR> received"),
    (b"NOOP\0\r\n", "5.5.2 Error: NUL character received"),
])
def test_bad_command_line_ends(plain_instance, line, expect):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    c.send(line)
    assert c.reply() == (500, [expect])
    assert c.cmd("NOOP")[0] == 250
    c.close()


@pytest.mark.parametrize("content,expect", [
    (b"Subject: x\r\n\r\nsmuggled\n.\r\nMAIL FROM:<x@y.example>\r\n.\r\n",
     "5.6.0 Error: bare <LF> received"),
    (b"Subject: x\r\n\r\nsmuggled\n.\n\r\n.\r\n",
     "5.6.0 Error: bare <LF> received"),
    (b"Subject: x\r\n\r\nbare\rcr\r\n.\r\n",
     "5.6.0 Error: bare <CR> received"),
    (b"Subject: x\r\n\r\nnul\0byte\r\n.\r\n",
     "5.6.0 Error: NUL character in message content"),
])
def test_bad_data_is_refused_and_not_queued(plain_instance, content, expect):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    start_transaction(c)
    assert c.cmd("DATA")[0] == 354
    c.send(content)
    code, lines = c.reply()
    assert code == 550 and lines == [expect]
    assert c.cmd("NOOP")[0] == 250  # the "MAIL" above was data, not a command
    c.close()
    assert queued(plain_instance) == {}


def test_command_timeout(plain_instance):
    ports = start_smtpd(plain_instance, "smtpd_timeout = 2s\n")
    c = RawSmtp(ports.smtp)
    c.cmd("EHLO client.example")
    started = time.monotonic()
    assert c.reply() == (421, ["4.4.2 mx.example.net Error: timeout exceeded"])
    assert 1.5 < time.monotonic() - started < 6
    assert c.closed()
    c.close()
    plain_instance.wait_log(r"timeout after EHLO from localhost\[127\.0\.0\.1\]")


def test_too_many_errors(plain_instance):
    ports = start_smtpd(plain_instance, "smtpd_hard_error_limit = 3\n")
    c = RawSmtp(ports.smtp)
    for _ in range(3):
        assert c.cmd("BOGUS")[0] == 500
    assert c.reply() == (421, ["4.7.0 mx.example.net Error: too many errors"])
    assert c.closed()
    c.close()
    plain_instance.wait_log(r"too many errors after UNKNOWN from "
                            r"localhost\[127\.0\.0\.1\]")


def test_recipient_limit(plain_instance):
    ports = start_smtpd(plain_instance, "smtpd_recipient_limit = 2\n")
    assert session(ports.smtp, "EHLO c.example", "MAIL FROM:<a@example.org>",
                   "RCPT TO:<alice@mx.example.net>",
                   "RCPT TO:<bob@mx.example.net>",
                   "RCPT TO:<postmaster@mx.example.net>") == \
        [250, 250, 250, 250, 452]


def test_data_timeout_queues_nothing(plain_instance):
    ports = start_smtpd(plain_instance, "smtpd_data_timeout = 1s\n")
    c = RawSmtp(ports.smtp)
    start_transaction(c)
    assert c.cmd("DATA")[0] == 354
    for _ in range(4):  # a client that trickles never ends the deadline
        c.send(b"x\r\n")
        time.sleep(0.4)
    assert c.reply()[0] == 421
    c.close()
    plain_instance.wait_log(r"timeout after DATA from localhost")
    assert queued(plain_instance) == {}


def test_cleanup_unavailable_defers(plain_instance):
    ports = start_smtpd(plain_instance)
    plain_instance.write_master_cf(
        "\n".join(line for line in
                  (plain_instance.etc / "master.cf").read_text().split("\n")
                  if not line.startswith("cleanup")) + "\n")
    assert plain_instance.postino("reload").returncode == 0
    plain_instance.wait_log(r"reload", timeout=10)
    deadline = time.monotonic() + 10
    while (plain_instance.queue / "private" / "cleanup").exists() and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    codes = session(ports.smtp, "EHLO c.example", "MAIL FROM:<a@example.org>",
                    "RCPT TO:<alice@mx.example.net>")
    assert codes == [250, 250, 451]


def test_anvil_limits_connections_and_messages(plain_instance):
    ports = start_smtpd(plain_instance, OUTSIDE +
                        "smtpd_client_connection_count_limit = 1\n"
                        "smtpd_client_message_rate_limit = 1\n")
    first = RawSmtp(ports.smtp)
    second = RawSmtp(ports.smtp, greeting=False)
    code, lines = second.reply()
    assert code == 421 and "too many connections from 127.0.0.1" in lines[0]
    second.close()
    first.cmd("EHLO c.example")
    assert first.cmd("MAIL FROM:<a@example.org>")[0] == 250
    first.cmd("RSET")
    assert first.cmd("MAIL FROM:<a@example.org>") == \
        (450, ["4.7.1 Error: too much mail from 127.0.0.1"])
    first.close()
    log = plain_instance.log()
    assert re.search(r"warning: Connection concurrency limit exceeded: 2 "
                     r"from localhost\[127\.0\.0\.1\] for service", log)
    assert "Message delivery request rate limit exceeded" in log


def test_client_lost_in_data_queues_nothing(plain_instance):
    ports = start_smtpd(plain_instance)
    c = RawSmtp(ports.smtp)
    start_transaction(c)
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: cut\r\n\r\nhalf a message\r\n")
    c.close()
    plain_instance.wait_log(r"lost connection after DATA \(\d+ bytes\) from "
                            r"localhost\[127\.0\.0\.1\]")
    plain_instance.wait_log(r"disconnect from localhost\[127\.0\.0\.1\] "
                            r"ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4")
    assert queued(plain_instance) == {}


def test_killed_smtpd_in_data_queues_nothing(instance):
    ports = start_smtpd(instance)
    c = RawSmtp(ports.smtp)
    start_transaction(c)
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: cut\r\n\r\nhalf a message\r\n")
    time.sleep(0.2)
    pids = [int(p) for p in re.findall(r"postino/smtpd\[(\d+)\]: connect from",
                                       instance.log())]
    os.kill(pids[-1], signal.SIGKILL)
    assert c.reply() == (None, [])
    c.close()
    instance.wait_log(rf"pid {pids[-1]} killed by signal 9")
    time.sleep(0.3)
    assert queued(instance) == {}


def test_make_run_instance_takes_mail_on_2525(tmp_path):
    """tools/run.sh (make run) with RUN_DIR: smtpd answers on
    127.0.0.1:2525 (STARTTLS with the generated certificate) and the
    message reaches the queue; submissions answers on 5465."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    for port in (2525, 5587, 5465):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                pytest.skip(f"port {port} is in use (a make run instance?)")
    run_dir = tmp_path / "run"
    env = dict(os.environ, BUILD=str(BIN.parent), RUN_DIR=str(run_dir))
    log_path = tmp_path / "terminal.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([os.path.join(top, "tools", "run.sh")],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "daemon started" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        with smtplib.SMTP("127.0.0.1", 2525, timeout=10) as s:
            s.starttls(context=client_tls())
            s.ehlo("client.example")
            s.sendmail("someone@example.org", ["root@localhost"], MESSAGE)
        with smtplib.SMTP_SSL("127.0.0.1", 5465, timeout=10,
                              context=client_tls()) as s:
            assert s.ehlo("client.example")[0] == 250
        deadline = time.monotonic() + 10
        # In the queue: incoming/, or wherever qmgr has moved it since.
        while not any(os.listdir(run_dir / "queue" / sub)
                      for sub in ("incoming", "active", "deferred")):
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log_path.read_text()
    assert re.search(r"postino/smtpd\[\d+\]: [0-9A-F]+: "
                     r"client=localhost\[127\.0\.0\.1\]", text), text


def test_chrooted_smtpd_takes_mail_over_tls(plain_instance):
    """With the chroot column y (as root: chroot to the queue directory)
    the certificate, the key (root only) and every table were opened
    before the privilege drop, so STARTTLS, recipient checks and the hand-
    off to cleanup work inside the chroot."""
    inst = plain_instance
    ports = start_smtpd(inst, OUTSIDE + SASL_ON)
    text = (inst.etc / "master.cf").read_text()
    inst.write_master_cf(re.sub(rf"^(127\.0\.0\.1:{ports.smtp} inet n - )n",
                                r"\1y", text, flags=re.M))
    assert inst.postino("reload").returncode == 0
    inst.wait_log(r"reload")
    time.sleep(0.5)  # old children finish; new ones read the new column
    with smtplib.SMTP("127.0.0.1", ports.smtp, timeout=10) as s:
        s.starttls(context=client_tls())
        s.ehlo("client.example")
        code, _ = s.docmd("MAIL", "FROM:<a@example.org>")
        assert code == 250
        assert s.docmd("RCPT", "TO:<nobody@mx.example.net>")[0] == 550
        assert s.docmd("RCPT", "TO:<carol@example.net>")[0] == 250
        assert s.docmd("DATA")[0] == 354
        s.send(b"Subject: chroot\r\n\r\nok\r\n.\r\n")
        assert s.getreply()[0] == 250
        pid = int(re.findall(r"postino/smtpd\[(\d+)\]: connect from",
                             inst.log())[-1])
        if os.geteuid() == 0:
            assert os.readlink(f"/proc/{pid}/root") == str(inst.queue)
    (qf,) = wait_queued(inst).values()
    assert qf.attributes["protocol"] == "ESMTPS"


def test_ipv6_loopback_client_is_localhost_and_in_mynetworks(plain_instance):
    """A client on ::1 is "localhost" without any lookup, matches
    [::1]/128 in mynetworks, and may relay."""
    inst = plain_instance
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
            port6 = probe.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    ports = start_smtpd(inst, "inet_protocols = all\n"
                              "mynetworks = 192.0.2.0/24 [::1]/128\n")
    text = (inst.etc / "master.cf").read_text()
    inst.write_master_cf(text + f"[::1]:{port6} inet n - n - - "
                         f"{BIN}/smtpd\n")
    assert inst.postino("reload").returncode == 0
    inst.wait_log(r"reload")
    deadline = time.monotonic() + 10
    while True:
        try:
            s = smtplib.SMTP("::1", port6, timeout=10)
            break
        except OSError:
            assert time.monotonic() < deadline, inst.log()
            time.sleep(0.1)
    with s:
        s.ehlo("client.example")
        s.sendmail("a@example.org", ["x@remote.example"], MESSAGE)
    (qf,) = wait_queued(inst).values()
    assert qf.attributes["client_address"] == "::1"
    assert qf.attributes["client_name"] == "localhost"
    assert "(localhost [IPv6:::1])" in qf.header()
    inst.wait_log(r"connect from localhost\[::1\]")
