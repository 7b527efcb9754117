"""The cleanup daemon: a real instance, the record protocol on
private/cleanup, and the queue files it leaves on disk."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import BIN, IS_ROOT
from records import (CLEANUP_FLAG_EXTRACT, CLEANUP_FLAG_NO_CHECKS,
                     CLEANUP_FLAG_SUBMISSION, CleanupClient, QueueFile,
                     send_message)

SMTPD_ATTRS = dict(client_name="client.example", client_address="192.0.2.1",
                   helo_name="helo.example", protocol="ESMTP",
                   origin="smtpd")
MESSAGE = (b"From: a@example.com\nTo: b@example.org\nSubject: hello\n"
           b"Message-ID: <m1@example.com>\n\nbody line\n")


def start(inst, main_cf="", extra="", maxproc="0"):
    inst.write_main_cf("myhostname = mx.example.net\n" + main_cf)
    inst.write_master_cf(inst.cleanup_line(maxproc, extra.strip()))
    inst.start()
    return inst.queue / "private" / "cleanup"


def queue_names(inst, sub="incoming"):
    return sorted(os.listdir(inst.queue / sub))


def write_file(inst, name, text):
    path = inst.etc / name
    inst._write(path, text)
    return path


def test_message_is_queued_with_envelope_and_received(instance):
    sock = start(instance)
    c = CleanupClient(sock)
    opened = c.open(sender="a@example.com", size="120", dsn_envid="E1",
                    **SMTPD_ATTRS)
    assert opened["status"] == "ok"
    qid = opened["queue_id"]
    assert re.fullmatch(r"[0-9A-F]{6,}", qid)
    # The ID is known before anything else, and nothing is visible yet.
    assert queue_names(instance) == []
    c.rcpt("b@example.org", orcpt="rfc822;b@example.org", notify="FAILURE")
    c.data(MESSAGE[:10])
    c.data(MESSAGE[10:])
    reply = c.end()
    c.close()
    assert reply == {"status": "ok", "queue_id": qid, "code": 250,
                     "dsn": "2.0.0", "text": f"Ok: queued as {qid}"}
    assert queue_names(instance) == [qid]
    qf = QueueFile(instance.queue / "incoming" / qid)
    assert qf.types.startswith("VST")
    assert qf.types.endswith("MBXE")
    assert qf.sender == "a@example.com"
    assert qf.recipients == [("b@example.org", "rfc822;b@example.org",
                              "FAILURE")]
    assert qf.attributes["client_address"] == "192.0.2.1"
    assert qf.attributes["helo_name"] == "helo.example"
    assert qf.attributes["dsn_envid"] == "E1"
    assert qf.attributes["origin"] == "smtpd"
    received = qf.content.split(b"\n")[:3]
    assert received[0] == (b"Received: from helo.example "
                           b"(client.example [192.0.2.1])")
    assert received[1] == (b"\tby mx.example.net (Postino) with ESMTP id "
                           + qid.encode())
    assert re.fullmatch(rb"\tfor <b@example\.org>; \w{3}, \d{1,2} \w{3} "
                        rb"\d{4} \d\d:\d\d:\d\d [+-]\d{4}", received[2])
    assert qf.content.endswith(MESSAGE)
    instance.wait_log(rf"{qid}: message-id=<m1@example\.com>")


def checks_instance(inst, header="", body=""):
    conf = ""
    if header:
        conf += f"header_checks = pcre:{write_file(inst, 'header.pcre', header)}\n"
    if body:
        conf += f"body_checks = pcre:{write_file(inst, 'body.pcre', body)}\n"
    return start(inst, conf)


HEADER_CHECKS = (
    "/^Subject: reject me/ REJECT no thanks\n"
    "/^Subject: plain reject/ REJECT\n"
    "/^Subject: coded reject/ REJECT 5.7.9 with a code\n"
    "/^Subject: discard me/ DISCARD dropped here\n"
    "/^Subject: hold me/ HOLD held for review\n"
    "/^X-Secret:/ IGNORE\n"
    "/^Subject: warn me/ WARN just so you know\n"
    "/^X-Old:/ REPLACE X-New: replaced\n"
    "/^X-Mark:/ PREPEND X-Before: prepended\n"
    "/^X-Odd:/ FROBNICATE now\n"
)


def one_message(sock, content, sender="a@example.com",
                recipients=("b@example.org",), flags=0, attrs=SMTPD_ATTRS):
    return send_message(sock, sender, list(recipients), content, flags=flags,
                        **attrs)[1]


def test_header_checks_reject(instance):
    sock = checks_instance(instance, HEADER_CHECKS)
    reply = one_message(sock, b"Subject: reject me now\n\nbody\n")
    assert (reply["status"], reply["code"], reply["dsn"], reply["text"]) == \
        ("reject", 550, "5.7.1", "no thanks")
    reply = one_message(sock, b"Subject: coded reject\n\nbody\n")
    assert (reply["code"], reply["dsn"], reply["text"]) == \
        (550, "5.7.9", "with a code")
    reply = one_message(sock, b"Subject: plain reject\n\nbody\n")
    assert reply["text"] == "message content rejected"
    assert queue_names(instance) == []
    instance.wait_log(
        rf"{reply['queue_id']}: reject: header Subject: plain reject from "
        r"client\.example\[192\.0\.2\.1\]; from=<a@example\.com> "
        r"to=<b@example\.org> proto=ESMTP helo=<helo\.example>: 5\.7\.1 "
        r"message content rejected")


def test_header_checks_discard_hold_warn(instance):
    sock = checks_instance(instance, HEADER_CHECKS)
    reply = one_message(sock, b"Subject: discard me\n\nbody\n")
    assert (reply["status"], reply["code"]) == ("discard", 250)
    assert queue_names(instance) == []
    assert queue_names(instance, "hold") == []
    instance.wait_log(rf"{reply['queue_id']}: discard: header Subject: "
                      r"discard me from .*: dropped here")

    reply = one_message(sock, b"Subject: hold me\n\nbody\n")
    assert (reply["status"], reply["code"]) == ("hold", 250)
    assert queue_names(instance) == []
    assert queue_names(instance, "hold") == [reply["queue_id"]]
    instance.wait_log(rf"{reply['queue_id']}: hold: header Subject: hold me "
                      r"from .*: held for review")

    reply = one_message(sock, b"Subject: warn me\n\nbody\n")
    assert reply["status"] == "ok"
    assert queue_names(instance) == [reply["queue_id"]]
    instance.wait_log(rf"{reply['queue_id']}: warning: header Subject: "
                      r"warn me from .*: just so you know")


def test_header_checks_edit_the_header(instance):
    sock = checks_instance(instance, HEADER_CHECKS)
    content = (b"X-Secret: one\n\ttwo folded\nX-Old: value\nX-Mark: m\n"
               b"X-Odd: o\nSubject: fine\n\nbody\n")
    reply = one_message(sock, content)
    assert reply["status"] == "ok"
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    header = qf.header()
    assert "X-Secret" not in header and "two folded" not in header
    assert "X-Old" not in header
    assert "\nX-New: replaced\nX-Before: prepended\nX-Mark: m\nX-Odd: o\n" \
        in header
    assert qf.body() == b"body\n"
    instance.wait_log(r"warning: .*unknown header_checks action "
                      r"\"FROBNICATE now\": ignored")


def test_folded_header_is_checked_unfolded(instance):
    sock = checks_instance(instance, "/^Subject: reject me please$/ REJECT\n")
    reply = one_message(sock, b"Subject: reject\n me\n please\n\nbody\n")
    assert reply["status"] == "reject"


def test_no_checks_flag_skips_checks(instance):
    sock = checks_instance(instance, HEADER_CHECKS)
    reply = one_message(sock, b"Subject: reject me\n\nbody\n",
                        flags=CLEANUP_FLAG_NO_CHECKS)
    assert reply["status"] == "ok"


def test_body_checks(instance):
    sock = checks_instance(instance, body="/^bad word/ REJECT body refused\n"
                                          "/^drop this/ IGNORE\n")
    reply = one_message(sock, b"Subject: x\n\nline one\nbad word here\n")
    assert (reply["status"], reply["text"]) == ("reject", "body refused")
    instance.wait_log(rf"{reply['queue_id']}: reject: body bad word here "
                      r"from client\.example\[192\.0\.2\.1\]; .*: 5\.7\.1 "
                      r"body refused")
    reply = one_message(sock, b"Subject: x\n\nkeep\ndrop this line\nkeep 2\n")
    assert reply["status"] == "ok"
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.body() == b"keep\nkeep 2\n"


def test_virtual_alias_and_canonical(instance):
    virtual = write_file(instance, "virtual",
                         "list@example.org a@example.net, b@example.net\n"
                         "a@example.net a@example.net, c@example.net\n"
                         "b@example.net d@example.net\n"
                         "dup@example.org d@example.net a@example.net\n")
    canonical = write_file(instance, "canonical",
                           "old@example.org list@example.org\n"
                           "sender@example.com Sender.Name@example.com\n")
    sock = start(instance, f"virtual_alias_maps = texthash:{virtual}\n"
                           f"canonical_maps = texthash:{canonical}\n")
    c = CleanupClient(sock)
    c.open(sender="sender@example.com", **SMTPD_ATTRS)
    c.rcpt("old@example.org", notify="SUCCESS,FAILURE")
    c.rcpt("dup@example.org", orcpt="rfc822;given@example.org")
    c.rcpt("plain@example.org")
    c.data(MESSAGE)
    reply = c.end()
    c.close()
    assert reply["status"] == "ok"
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.sender == "Sender.Name@example.com"
    assert qf.recipients == [
        ("a@example.net", "rfc822;old@example.org", "SUCCESS,FAILURE"),
        ("c@example.net", "rfc822;old@example.org", "SUCCESS,FAILURE"),
        ("d@example.net", "rfc822;old@example.org", "SUCCESS,FAILURE"),
        ("plain@example.org", None, None),
    ]
    # The Received header names no recipient: there were three.
    assert b"\tfor <" not in qf.content.split(b"\n\n")[0]


def test_virtual_alias_loop_defers(instance):
    virtual = write_file(instance, "virtual",
                         "a@example.org b@example.org\n"
                         "b@example.org a@example.org\n")
    sock = start(instance, f"virtual_alias_maps = texthash:{virtual}\n"
                           "virtual_alias_recursion_limit = 20\n")
    reply = one_message(sock, MESSAGE, recipients=["a@example.org"])
    assert (reply["status"], reply["code"], reply["dsn"]) == \
        ("defer", 451, "4.3.0")
    instance.wait_log(r"unreasonable virtual_alias_maps map nesting for "
                      r"a@example\.org")
    assert queue_names(instance) == []


def test_virtual_alias_expansion_limit_defers(instance):
    many = ", ".join(f"u{i}@example.net" for i in range(30))
    virtual = write_file(instance, "virtual", f"big@example.org {many}\n")
    sock = start(instance, f"virtual_alias_maps = texthash:{virtual}\n"
                           "virtual_alias_expansion_limit = 10\n")
    reply = one_message(sock, MESSAGE, recipients=["big@example.org"])
    assert reply["status"] == "defer"
    instance.wait_log(r"unreasonable virtual_alias_maps map expansion size")


def test_no_rewrite_flag(instance):
    virtual = write_file(instance, "virtual", "a@example.org b@example.org\n")
    sock = start(instance, f"virtual_alias_maps = texthash:{virtual}\n")
    reply = one_message(sock, MESSAGE, recipients=["a@example.org"],
                        flags=4)
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.addresses == ["a@example.org"]


def test_hop_count_limit(instance):
    sock = start(instance, "hopcount_limit = 3\n")
    hops = b"Received: from x by y; date\n" * 3
    assert one_message(sock, hops + MESSAGE)["status"] == "ok"
    reply = one_message(sock, hops + b"Received: one more\n" + MESSAGE)
    assert (reply["status"], reply["code"], reply["dsn"], reply["text"]) == \
        ("reject", 554, "5.4.6", "Too many hops")


def test_message_size_limit(instance):
    sock = start(instance, "message_size_limit = 20000\n")
    assert one_message(sock, MESSAGE + b"x" * 10000 + b"\n")["status"] == "ok"
    reply = one_message(sock, MESSAGE + (b"y" * 999 + b"\n") * 30)
    assert (reply["status"], reply["code"], reply["dsn"], reply["text"]) == \
        ("reject", 552, "5.3.4", "Message size exceeds fixed limit")
    assert len(queue_names(instance)) == 1


def test_header_size_limit(instance):
    sock = start(instance, "header_size_limit = 2048\n")
    long_field = b"X-Long: " + b"a" * 3000 + b"\n"
    reply = one_message(sock, long_field + b"\nbody\n")
    assert (reply["status"], reply["code"], reply["dsn"], reply["text"]) == \
        ("reject", 552, "5.3.4", "Message header size exceeds limit")
    folded = b"X-Folded: start\n" + b"\tcontinued line\n" * 200
    assert one_message(sock, folded + b"\nbody\n")["status"] == "reject"
    many = b"".join(b"X-%d: value\n" % i for i in range(300))
    assert one_message(sock, many + b"\nbody\n")["status"] == "reject"
    # A long body line is no header: it is fine.
    reply = one_message(sock, b"Subject: x\n\n" + b"b" * 5000 + b"\n")
    assert reply["status"] == "ok"
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.body() == b"b" * 5000 + b"\n"
    assert queue_names(instance) == [reply["queue_id"]]


def test_message_without_header_or_separator(instance):
    sock = start(instance)
    reply = one_message(sock, b"just a body line\nand another")
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    header, body = qf.content.split(b"\n\n", 1)
    assert header.startswith(b"Received: from helo.example")
    assert body == b"just a body line\nand another\n"
    reply = one_message(sock, b"Subject: only a header\n")
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.content.endswith(b"\nSubject: only a header\n")


def test_submission_gets_missing_headers(instance):
    sock = start(instance)
    reply = one_message(sock, b"Subject: local\n\nhi\n",
                        sender="joe@mx.example.net",
                        flags=CLEANUP_FLAG_SUBMISSION,
                        attrs=dict(origin="pickup", local_user="1000",
                                   protocol="local"))
    qid = reply["queue_id"]
    qf = QueueFile(instance.queue / "incoming" / qid)
    lines = qf.header().split("\n")
    assert lines[0] == "Received: by mx.example.net (Postino, from userid 1000)"
    assert re.fullmatch(rf"\tid {qid}; \w{{3}}, \d+ \w{{3}} \d{{4}} [\d:]{{8}} "
                        r"[+-]\d{4}", lines[1])
    assert re.fullmatch(rf"Message-ID: <\d{{14}}\.{qid}@mx\.example\.net>",
                        lines[-3])
    assert lines[-2].startswith("Date: ")
    assert lines[-1] == "From: joe@mx.example.net"
    instance.wait_log(rf"{qid}: message-id=<\d{{14}}\.{qid}@mx\.example\.net>")
    # A message that has them keeps its own.
    reply = one_message(sock, MESSAGE + b"", flags=CLEANUP_FLAG_SUBMISSION)
    header = QueueFile(instance.queue / "incoming" /
                       reply["queue_id"]).header()
    assert header.count("Message-ID:") == 1 and header.count("From:") == 1
    assert header.count("Date:") == 1


def test_tls_and_sasl_in_received(instance):
    sock = start(instance)
    attrs = dict(SMTPD_ATTRS, protocol="ESMTPSA", sasl_username="joe",
                 tls="TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 "
                     "(256/256 bits)")
    reply = one_message(sock, MESSAGE, recipients=["x@example.org",
                                                   "y@example.org"],
                        attrs=attrs)
    qid = reply["queue_id"]
    lines = QueueFile(instance.queue / "incoming" / qid).header().split("\n")
    assert lines[:4] == [
        "Received: from helo.example (client.example [192.0.2.1])",
        "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))",
        "\t(Authenticated sender: joe)",
        f"\tby mx.example.net (Postino) with ESMTPSA id {qid};",
    ]
    assert re.fullmatch(r"\t\w{3}, \d+ \w{3} \d{4} [\d:]{8} [+-]\d{4}",
                        lines[4])


def test_recipients_from_headers(instance):
    sock = start(instance)
    content = (b"From: me@example.com\n"
               b"To: \"Doe, John\" <john@example.org>, plain@example.org\n"
               b"Cc: team: x@example.org, (comment) y@example.org;,\n"
               b"  Joe (the man) <@relay.example:joe@example.org>\n"
               b"Bcc: secret@example.org\n"
               b"Subject: extract\n\nbody\n")
    reply = one_message(sock, content, recipients=[],
                        flags=CLEANUP_FLAG_EXTRACT | CLEANUP_FLAG_SUBMISSION,
                        attrs=dict(origin="sendmail", local_user="0"))
    assert reply["status"] == "ok", reply
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.addresses == ["john@example.org", "plain@example.org",
                            "x@example.org", "y@example.org",
                            "joe@example.org", "secret@example.org"]
    assert "Bcc" not in qf.header() and "secret" not in qf.header()
    assert qf.types.endswith("XRRRRRRE")
    # With Resent- fields, only those count.
    content = (b"To: old@example.org\nResent-To: new@example.org\n"
               b"Resent-Bcc: hidden@example.org\n\nbody\n")
    reply = one_message(sock, content, recipients=[],
                        flags=CLEANUP_FLAG_EXTRACT)
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.addresses == ["new@example.org", "hidden@example.org"]
    assert "hidden" not in qf.header()
    # No recipient anywhere.
    reply = one_message(sock, b"Subject: nobody\n\nbody\n", recipients=[],
                        flags=CLEANUP_FLAG_EXTRACT)
    assert (reply["status"], reply["code"], reply["dsn"]) == \
        ("reject", 554, "5.5.1")


def test_no_recipients_rejected(instance):
    sock = start(instance)
    reply = one_message(sock, MESSAGE, recipients=[])
    assert (reply["status"], reply["code"]) == ("reject", 554)
    assert queue_names(instance) == []


def test_client_gone_mid_message_leaves_nothing(instance):
    sock = start(instance)
    c = CleanupClient(sock)
    qid = c.open(sender="a@example.com", **SMTPD_ATTRS)["queue_id"]
    c.rcpt("b@example.org")
    c.data(MESSAGE + b"x" * 200000)
    c.close()
    instance.wait_log(rf"{qid}: lost connection from the client before the "
                      r"end of the message; message not queued")
    assert queue_names(instance) == []
    # request=abort: the same, without a warning.
    c = CleanupClient(sock)
    qid = c.open(sender="a@example.com")["queue_id"]
    c.rcpt("b@example.org")
    c.data(MESSAGE)
    c.send(("request", "abort"))
    instance.wait_log(rf"{qid}: aborted by the client")
    c.close()
    assert queue_names(instance) == []


def test_idle_client_times_out(instance):
    sock = start(instance, extra=" -o ipc_timeout=1s")
    c = CleanupClient(sock)
    qid = c.open(sender="a@example.com")["queue_id"]
    c.rcpt("b@example.org")
    c.data(MESSAGE)
    instance.wait_log(rf"{qid}: timeout from the client before the end",
                      timeout=10)
    assert queue_names(instance) == []
    c.close()



def test_killed_cleanup_leaves_no_queue_file(instance):
    sock = start(instance, maxproc="1")
    c = CleanupClient(sock)
    qid = c.open(sender="a@example.com")["queue_id"]
    c.rcpt("b@example.org")
    c.data(MESSAGE + b"z" * 300000)
    time.sleep(0.2)
    pids = instance.pids_of("cleanup")
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    instance.wait_log(rf"pid {pids[0]} killed by signal 9")
    with pytest.raises((EOFError, ConnectionError)):
        c.end()
    c.close()
    assert queue_names(instance) == []
    # And the service works on.
    assert one_message(sock, MESSAGE)["status"] == "ok"
    assert qid not in queue_names(instance)


def test_protocol_errors(instance):
    sock = start(instance)
    # Not an open request.
    c = CleanupClient(sock)
    c.send(("request", "rcpt"), ("address", "x@example.org"))
    reply = c.reply()
    assert (reply["status"], reply["code"], reply["dsn"]) == \
        ("defer", 451, "4.3.0")
    c.close()
    # Open without a sender.
    c = CleanupClient(sock)
    c.send(("request", "open"))
    assert c.reply()["status"] == "defer"
    c.close()
    # A recipient after content, and an unknown request.
    for bad in [[("request", "data"), ("data", b"x\n")],
                [("request", "frobnicate")]]:
        c = CleanupClient(sock)
        qid = c.open(sender="a@example.com")["queue_id"]
        c.rcpt("b@example.org")
        c.send(*bad)
        if bad[0][1] == "data":
            c.rcpt("late@example.org")
        reply = c.reply()
        assert (reply["status"], reply["queue_id"]) == ("defer", qid)
        c.close()
    # Garbage instead of a record: the connection is closed.
    c = CleanupClient(sock)
    c.sock.sendall(b"\x00\x00\x00\x03\x07ab")
    with pytest.raises(EOFError):
        c.reply()
    c.close()
    instance.wait_log(r"protocol error: unknown request")
    assert queue_names(instance) == []


def test_qmgr_is_woken(instance):
    sock = start(instance)
    path = instance.queue / "public" / "qmgr"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o666)
    listener.listen(5)
    listener.settimeout(10)
    try:
        assert one_message(sock, MESSAGE)["status"] == "ok"
        conn, _ = listener.accept()
        conn.settimeout(5)
        assert conn.recv(10) == b"I"
        conn.close()
    finally:
        listener.close()
        path.unlink()
    # Without a queue manager, mail is accepted all the same.
    assert one_message(sock, MESSAGE)["status"] == "ok"


@pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root")
def test_full_file_system_defers_then_recovers(instance):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755",
                    "tmpfs", str(instance.queue)], check=True)
    try:
        if instance.user:
            os.chown(instance.queue, instance.uid, instance.gid)
        sock = start(instance)
        filler = instance.queue / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"f" * 65536)
        except OSError:
            pass
        os.close(fd)
        reply = one_message(sock, MESSAGE + b"x" * 200000)
        assert (reply["status"], reply["code"], reply["dsn"],
                reply["text"]) == ("defer", 452, "4.3.1",
                                   "Insufficient system storage")
        assert queue_names(instance) == []
        filler.unlink()
        reply = one_message(sock, MESSAGE + b"x" * 200000)
        assert reply["status"] == "ok"
        assert queue_names(instance) == [reply["queue_id"]]
    finally:
        instance.stop()
        subprocess.run(["umount", str(instance.queue)], check=True)


def test_attribute_with_line_break_is_not_put_in_received(instance):
    sock = start(instance)
    attrs = dict(SMTPD_ATTRS, helo_name="evil\nX-Injected: yes")
    reply = one_message(sock, MESSAGE, attrs=attrs)
    assert reply["status"] == "ok"
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert "X-Injected" not in qf.header()
    assert qf.header().startswith(
        "Received: from client.example (client.example [192.0.2.1])")


def test_header_addresses_rewritten_for_submissions(instance):
    canonical = write_file(instance, "canonical",
                           "joe@mx.example.net joe.public@example.net\n"
                           "team@mx.example.net people@example.net\n")
    sock = start(instance, f"canonical_maps = texthash:{canonical}\n")
    content = (b"From: \"Joe Q. Public\" <joe@mx.example.net> (home)\n"
               b"To: Team (the team)\n <team@mx.example.net>, "
               b"other@example.org\n"
               b"Subject: joe@mx.example.net stays here\n\nbody\n")
    reply = one_message(sock, content, sender="joe@mx.example.net",
                        flags=CLEANUP_FLAG_SUBMISSION,
                        attrs=dict(origin="pickup", local_user="1000"))
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.sender == "joe.public@example.net"
    header = qf.header()
    assert ("\nFrom: \"Joe Q. Public\" <joe.public@example.net> (home)\n"
            in header)
    assert ("\nTo: Team (the team)\n <people@example.net>, "
            "other@example.org\n" in header)
    assert "\nSubject: joe@mx.example.net stays here" in header
    # Mail from a network client keeps its header as it came.
    reply = one_message(sock, content)
    header = QueueFile(instance.queue / "incoming" /
                       reply["queue_id"]).header()
    assert "<joe@mx.example.net> (home)" in header


def test_table_errors_defer(instance):
    # A pattern that backtracks past PCRE's match limit: a lookup error.
    sock = checks_instance(instance, "/^Subject: (a|a)*b$/ REJECT\n",
                           body="/^(x|x)*y$/ REJECT\n")
    reply = one_message(sock, b"Subject: " + b"a" * 40 + b"c\n\nbody\n")
    assert (reply["status"], reply["code"], reply["dsn"]) == \
        ("defer", 451, "4.3.0")
    instance.wait_log(rf"{reply['queue_id']}: header_checks lookup error")
    reply = one_message(sock, b"Subject: x\n\n" + b"x" * 40 + b"zy\n")
    assert (reply["status"], reply["code"]) == ("defer", 451)
    instance.wait_log(rf"{reply['queue_id']}: body_checks lookup error")
    assert queue_names(instance) == []


@pytest.mark.skipif(not IS_ROOT, reason="chroot needs root")
def test_chroot_without_proc_uses_named_temporary_files(plain_instance):
    inst = plain_instance
    inst.write_main_cf("myhostname = mx.example.net\n")
    # chroot: no /proc inside, so no unnamed files: tmp.* names instead.
    inst.write_master_cf(f"cleanup unix - - y - 1 {BIN}/cleanup "
                         "-o daemon_timeout=1s\n")
    inst.start()
    sock = inst.queue / "private" / "cleanup"
    assert one_message(sock, MESSAGE)["status"] == "ok"
    assert all(not n.startswith("tmp.") for n in queue_names(inst))
    # A cleanup killed in the middle leaves its tmp.* file ...
    c = CleanupClient(sock)
    c.open(sender="a@example.com")
    c.rcpt("b@example.org")
    c.data(MESSAGE + b"z" * 200000)
    time.sleep(0.3)
    pids = inst.pids_of("cleanup")
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    inst.wait_log(rf"pid {pids[0]} killed by signal 9")
    c.close()
    left = [n for n in queue_names(inst) if n.startswith("tmp.")]
    assert len(left) == 1
    # ... which the next cleanup removes once it is older than
    # daemon_timeout.
    time.sleep(2.1)
    assert one_message(sock, MESSAGE)["status"] == "ok"
    inst.wait_log(r"removed 1 stale temporary file from incoming")
    assert all(not n.startswith("tmp.") for n in queue_names(inst))


def test_many_recipients_duplicates_removed(instance):
    sock = start(instance)
    addresses = [f"user{i}@example.org" for i in range(5000)]
    given = addresses + [a.upper() for a in addresses[::2]]
    reply = one_message(sock, MESSAGE, recipients=given)
    assert reply["status"] == "ok"
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.addresses == addresses


def test_binary_body_is_stored_as_sent(instance):
    # Body checks run on every line and piece; nothing matches, so every
    # byte must come out as it went in, whatever the chunk boundaries.
    sock = checks_instance(instance, body="/^never matches$/ REJECT\n")
    rng = __import__("random").Random(5)
    body = bytes(rng.randrange(256) for _ in range(150000))
    body += b"\n" + b"L" * 9000 + b"\n\x00\r\n\n"
    c = CleanupClient(sock)
    c.open(sender="a@example.com", **SMTPD_ATTRS)
    c.rcpt("b@example.org")
    content = b"Subject: binary\n\n" + body
    for size in (1, 7, 4096, 65536):
        chunk, content = content[:size], content[size:]
        c.data(chunk)
    c.data(content)
    reply = c.end()
    c.close()
    assert reply["status"] == "ok"
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.body() == body


MIME_MESSAGE = (
    b"From: a@example.com\nMIME-Version: 1.0\n"
    b"Content-Type: multipart/mixed;\n boundary=\"outer b\"\n\n"
    b"preamble\n"
    b"--outer b\nContent-Type: text/plain\n\nhello\n"
    b"--outer b\nContent-Type: multipart/alternative; boundary=inner\n\n"
    b"--inner\nContent-Type: text/html\n\n<p>hi</p>\n"
    b"--inner--\n"
    b"--outer b\nContent-Type: application/x-evil;\n\tname=\"x.exe\"\n"
    b"Content-Transfer-Encoding: base64\n\nAAAA\n"
    b"--outer b--\nepilogue\n")


def test_mime_part_headers_are_checked(instance):
    sock = checks_instance(
        instance, "/^Content-Type: application\\/x-evil;\\s*name=\"x\\.exe\"/ "
                  "REJECT attachment refused\n"
                  "/^Content-Type: text\\/html/ WARN html part\n",
        body="/Content-Type:/ REJECT body checks saw a header\n"
             "/^<p>/ WARN html body line\n")
    reply = one_message(sock, MIME_MESSAGE)
    assert (reply["status"], reply["text"]) == ("reject",
                                                "attachment refused")
    instance.wait_log(rf"{reply['queue_id']}: reject: header Content-Type: "
                      r"application/x-evil;.name=\"x\.exe\" from ")
    log = instance.log()
    assert re.search(r"warning: header Content-Type: text/html from .*: "
                     r"html part", log)
    assert re.search(r"warning: body <p>hi</p> from .*: html body line", log)
    # Without the attachment all of it is queued as sent.
    ok = MIME_MESSAGE.replace(b"application/x-evil", b"application/pdf")
    reply = one_message(sock, ok)
    assert reply["status"] == "ok"
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.content.endswith(ok.split(b"\n", 1)[1])


def test_mime_header_checks_apart_from_header_checks(instance):
    mime = write_file(instance, "mime.pcre",
                      "/^Content-Type: application\\/x-evil/ REJECT mime\n")
    header = write_file(instance, "header.pcre",
                        "/^Subject: spam/ REJECT header\n"
                        "/^Content-Type: application/ REJECT not mine\n")
    sock = start(instance, f"header_checks = pcre:{header}\n"
                           f"mime_header_checks = pcre:{mime}\n")
    reply = one_message(sock, MIME_MESSAGE)
    assert (reply["status"], reply["text"]) == ("reject", "mime")
    reply = one_message(sock, b"Subject: spam\n\nx\n")
    assert (reply["status"], reply["text"]) == ("reject", "header")
    # A boundary line of no open multipart is body.
    reply = one_message(sock, b"Subject: x\n\n--nothing\nContent-Type: "
                              b"application/x-evil\n\nx\n")
    assert reply["status"] == "ok"


LOCAL_ATTRS = dict(origin="pickup", local_user="joe", protocol="local")


def test_local_submission_gets_myorigin(instance):
    sock = start(instance, "myorigin = example.net\n")
    content = (b"From: Joe User <joe> (at home)\n"
               b"Sender: joe\n"
               b"Reply-To: \"joe, the user\" <joe>, back@example.org\n"
               b"To: bob, Ann Other <ann>,\n\tcarol@example.org (Carol)\n"
               b"Cc: team: dave (Dave D), \"odd one\";\n"
               b"Subject: joe and bob stay here\n\nbody for bob\n")
    reply = one_message(sock, content, sender="joe",
                        recipients=["bob", "\"odd one\"", "x@example.org"],
                        flags=CLEANUP_FLAG_SUBMISSION, attrs=LOCAL_ATTRS)
    assert reply["status"] == "ok", reply
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.sender == "joe@example.net"
    # Qualified before anything else: no ORCPT for that alone.
    assert qf.recipients == [("bob@example.net", None, None),
                             ("\"odd one\"@example.net", None, None),
                             ("x@example.org", None, None)]
    header = qf.header()
    assert "\nFrom: Joe User <joe@example.net> (at home)\n" in header
    assert "\nSender: joe@example.net\n" in header
    assert ("\nReply-To: \"joe, the user\" <joe@example.net>, "
            "back@example.org\n" in header)
    assert ("\nTo: bob@example.net, Ann Other <ann@example.net>,\n"
            "\tcarol@example.org (Carol)\n" in header)
    assert ("\nCc: team: dave@example.net (Dave D), "
            "\"odd one\"@example.net;\n" in header)
    assert "\nSubject: joe and bob stay here\n" in header
    assert qf.body() == b"body for bob\n"


def test_network_mail_keeps_bare_addresses(instance):
    sock = start(instance)
    content = b"From: joe\nTo: bob\n\nbody\n"
    reply = one_message(sock, content, sender="joe", recipients=["bob"])
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert (qf.sender, qf.addresses) == ("joe", ["bob"])
    assert qf.header().endswith("\nFrom: joe\nTo: bob")


def test_append_at_myorigin_off(instance):
    sock = start(instance, "append_at_myorigin = no\n")
    content = b"From: joe\nTo: bob\n\nbody\n"
    reply = one_message(sock, content, sender="joe", recipients=["bob"],
                        flags=CLEANUP_FLAG_SUBMISSION, attrs=LOCAL_ATTRS)
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert (qf.sender, qf.addresses) == ("joe", ["bob"])
    assert "\nFrom: joe\nTo: bob\n" in qf.header() + "\n"


def added_from(sock, inst, sender, **attrs):
    reply = one_message(sock, b"Subject: no from\n\nbody\n", sender=sender,
                        recipients=["bob"], flags=CLEANUP_FLAG_SUBMISSION,
                        attrs=dict(LOCAL_ATTRS, **attrs))
    assert reply["status"] == "ok", reply
    header = QueueFile(inst.queue / "incoming" / reply["queue_id"]).header()
    return header.split("\nFrom: ", 1)[1]


def test_added_from_has_the_full_name(instance):
    sock = start(instance)     # myorigin = $myhostname = mx.example.net
    assert added_from(sock, instance, "joe") == "joe@mx.example.net"
    assert added_from(sock, instance, "joe", full_name="Joe User") == \
        "Joe User <joe@mx.example.net>"
    assert added_from(sock, instance, "joe@example.org",
                      full_name="Joe Q. Public") == \
        "\"Joe Q. Public\" <joe@example.org>"
    assert added_from(sock, instance, "joe",
                      full_name="Say \"hi\", Joe") == \
        "\"Say \\\"hi\\\", Joe\" <joe@mx.example.net>"
    # 8-bit: RFC 2047 encoded-words, or UTF-8 as it is for SMTPUTF8 mail.
    assert added_from(sock, instance, "jorg", full_name="J\u00f6rg") == \
        "=?UTF-8?B?SsO2cmc=?= <jorg@mx.example.net>"
    assert added_from(sock, instance, "jorg", full_name="J\u00f6rg",
                      smtputf8="1") == "J\u00f6rg <jorg@mx.example.net>"
    assert added_from(sock, instance, "") == "MAILER-DAEMON@mx.example.net"


ATTACHED_MESSAGE = (
    b"From: a@example.com\nSubject: fine\nMIME-Version: 1.0\n"
    b"Content-Type: multipart/mixed; boundary=b\n\n"
    b"--b\nContent-Type: text/plain\n\nSubject: nested spam in a text part\n"
    b"--b\nContent-Type: message/rfc822 (attached)\n\n"
    b"From: someone@example.net\n"
    b"Content-Type: multipart/alternative; boundary=in\n"
    b"Subject: nested spam\n\n"
    b"--in\nContent-Type: text/plain\n\nSubject: nested spam as body\n"
    b"--in--\n"
    b"--b--\n")


def test_nested_header_checks_see_attached_messages(instance):
    checks = write_file(instance, "header.pcre",
                        "/^Subject: nested spam$/ REJECT nested header\n"
                        "/^Content-Type: multipart\\/alternative/ WARN alt\n")
    sock = start(instance, f"header_checks = pcre:{checks}\n")
    # nested_header_checks defaults to $header_checks.
    reply = one_message(sock, ATTACHED_MESSAGE)
    assert (reply["status"], reply["code"], reply["text"]) == \
        ("reject", 550, "nested header")
    instance.wait_log(rf"{reply['queue_id']}: reject: header Subject: nested "
                      r"spam from client\.example\[192\.0\.2\.1\]")
    # The attached message's MIME fields went to mime_header_checks.
    instance.wait_log(rf"{reply['queue_id']}: warning: header Content-Type: "
                      r"multipart/alternative; boundary=in from ")
    # A message that is itself message/rfc822 has one nested header too.
    reply = one_message(sock, b"Content-Type: message/rfc822\n\n"
                              b"Subject: nested spam\n\nbody\n")
    assert reply["status"] == "reject"
    # The same lines in a body are body, and the message's own header is
    # header_checks' alone.
    body_only = ATTACHED_MESSAGE.replace(b"message/rfc822", b"text/plain")
    assert one_message(sock, body_only)["status"] == "ok"


def test_nested_header_checks_apart_from_header_checks(instance):
    header = write_file(instance, "header.pcre",
                        "/^Subject: nested spam$/ REJECT outer\n")
    nested = write_file(instance, "nested.pcre",
                        "/^From: someone@/ REJECT inner\n")
    sock = start(instance, f"header_checks = pcre:{header}\n"
                           f"nested_header_checks = pcre:{nested}\n")
    reply = one_message(sock, ATTACHED_MESSAGE)
    assert (reply["status"], reply["text"]) == ("reject", "inner")
    # A From: like it in the message's own header is not nested.
    reply = one_message(sock, b"From: someone@example.net\n\nbody\n")
    assert reply["status"] == "ok"


def test_nested_header_checks_can_be_turned_off(instance):
    header = write_file(instance, "header.pcre",
                        "/^Subject: nested spam$/ REJECT outer\n")
    sock = start(instance, f"header_checks = pcre:{header}\n"
                           "nested_header_checks =\n")
    reply = one_message(sock, ATTACHED_MESSAGE)
    assert reply["status"] == "ok", reply
    qf = QueueFile(instance.queue / "incoming" / reply["queue_id"])
    assert qf.content.endswith(ATTACHED_MESSAGE.split(b"\n", 1)[1])
