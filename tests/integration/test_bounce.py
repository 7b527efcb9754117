"""The bounce daemon: a real instance with cleanup and bounce, a message
queued through cleanup and moved to active/ as qmgr would, a recipient log
written in its format (docs/queue-format.md, "Recipient logs"), one
request on private/bounce (docs/protocol.md, "bounce"), and the notice it
queued, read back from incoming/ and parsed with Python's email package."""
import email
import email.policy
import email.utils
import os
import pwd
import re
import socket
import time

import pytest

from conftest import BIN
from records import (QueueFile, encode, queue_through_cleanup, read_record,
                     text_reply)

MYHOSTNAME = "mx.example.net"
MESSAGE = (b"From: Alice <alice@example.com>\nTo: bob@example.net\n"
           b"Subject: lunch\nMessage-ID: <m1@example.com>\n\n"
           b"Shall we meet at noon?\n")
BOB = {"address": "bob@example.net", "orcpt": "rfc822;b@example.net",
       "notify": "FAILURE,DELAY"}
CAROL = {"address": "carol@example.net"}


def start(inst, main_cf=""):
    inst.write_main_cf(f"myhostname = {MYHOSTNAME}\nmyorigin = example.net\n"
                       + main_cf)
    inst.write_master_cf(inst.cleanup_line() +
                         f"bounce unix - - n - 0 {BIN}/bounce\n")
    inst.start()


def mail_owner_ids(inst):
    if inst.uid == 0:
        pw = pwd.getpwnam("postino")
        return pw.pw_uid, pw.pw_gid
    return inst.uid, inst.gid


def queue_message(inst, sender="alice@example.com", recipients=(BOB, CAROL),
                  content=MESSAGE, **attrs):
    """A message through cleanup, as from smtpd, moved into active/; its
    queue ID."""
    return queue_through_cleanup(
        inst.queue, sender, recipients, content, origin="smtpd",
        protocol="ESMTP", client_address="192.0.2.1",
        client_name="c.example", helo_name="c.example", **attrs)


def write_log(inst, log_dir, qid, entries):
    """The recipient log log_dir/qid, one record per entry, as qmgr writes
    it, owned by mail_owner."""
    path = inst.queue / log_dir / qid
    with open(path, "ab") as f:
        for e in entries:
            f.write(encode(list(e.items())))
    uid, gid = mail_owner_ids(inst)
    os.chown(path, uid, gid)
    os.chmod(path, 0o600)


def ask(inst, **attrs):
    """One request to private/bounce; the reply as text."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(inst.queue / "private" / "bounce"))
    try:
        sock.sendall(encode(list(attrs.items())))
        return text_reply(read_record(sock))
    finally:
        sock.close()


def notify(inst, qid, kind, log_dir):
    return ask(inst, request="notify", kind=kind, queue_id=qid,
               queue_file=f"active/{qid}", log=f"{log_dir}/{qid}")


def incoming(inst):
    return sorted(os.listdir(inst.queue / "incoming"))


def notice(inst, new_id):
    qf = QueueFile(inst.queue / "incoming" / new_id)
    msg = email.message_from_bytes(qf.content, policy=email.policy.compat32)
    return qf, msg


def arrival(inst, qid):
    """Seconds of the T record of the original."""
    qf = QueueFile(inst.queue / "active" / qid)
    for rtype, data in qf.records:
        if rtype == "T":
            return int(data.decode().split(".")[0])
    raise AssertionError("no T record")


def date_of(value):
    return int(email.utils.parsedate_to_datetime(value).timestamp())


def entry(rcpt, status, action, text, time, **extra):
    e = {"recipient": rcpt["address"]}
    for name in ("orcpt", "notify"):
        if rcpt.get(name):
            e[name] = rcpt[name]
    e.update({"offset": 100, "status": status, "action": action,
              "text": text, **extra, "time": time})
    return e


def check_envelope_and_header(inst, qf, msg, new_id, subject, to,
                              sender=""):
    assert qf.sender == sender
    assert qf.addresses == [to]
    assert qf.attributes["origin"] == "bounce"
    assert msg["From"] == f"MAILER-DAEMON@{MYHOSTNAME} (Mail Delivery System)"
    assert msg["To"] == to
    assert msg["Subject"] == subject
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["MIME-Version"] == "1.0"
    assert re.fullmatch(rf"<\d{{14}}\.{new_id}@{re.escape(MYHOSTNAME)}>",
                        msg["Message-ID"])
    assert abs(date_of(msg["Date"]) - int(os.path.getmtime(
        inst.queue / "incoming" / new_id))) < 60
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg.get_boundary().startswith(f"{new_id}.")
    # Received: from cleanup first, then the notice's own header.
    assert qf.content.startswith(b"Received: by mx.example.net")
    parts = msg.get_payload()
    assert len(parts) == 3
    assert parts[0].get_content_type() == "text/plain"
    assert parts[0]["Content-Description"] == "Notification"
    assert parts[1].get_content_type() == "message/delivery-status"
    assert parts[1]["Content-Description"] == "Delivery report"
    return parts


def text_of(part):
    """The text part with its folded recipient lines joined again."""
    return part.get_payload().replace("\n    ", " ")


def lines_bounded(content):
    assert all(len(line) <= 998 for line in content.split(b"\n"))


# --- failure ----------------------------------------------------------------

def test_failure_notice_with_the_whole_message(instance):
    start(instance)
    qid = queue_message(instance, dsn_envid="ENV-1", dsn_ret="FULL")
    t_arrival = arrival(instance, qid)
    write_log(instance, "bounce", qid, [
        entry(BOB, "5.1.1", "failed", "host mx.example.net said: 550 5.1.1 "
              "no such user", 1700000100, remote_mta="dns; mx.example.net",
              diagnostic="smtp; 550 5.1.1 <bob@example.net>: no such user"),
        entry(CAROL, "5.2.2", "failed", "mailbox full", 1700000200),
    ])
    reply = notify(instance, qid, "failure", "bounce")
    assert reply["status"] == "ok"
    new_id = reply["queue_id"]
    assert incoming(instance) == [new_id]
    instance.wait_log(rf"{qid}: sender non-delivery notification: {new_id}")
    qf, msg = notice(instance, new_id)
    parts = check_envelope_and_header(
        instance, qf, msg, new_id, "Undelivered Mail Returned to Sender",
        "alice@example.com")
    lines_bounded(qf.content)
    assert msg["Content-Transfer-Encoding"] == "7bit"
    text = text_of(parts[0])
    assert f"at host {MYHOSTNAME}" in text
    assert ("<bob@example.net> (expanded from <b@example.net>): host "
            "mx.example.net said: 550 5.1.1 no such user") in text
    assert "<carol@example.net>: mailbox full" in text
    assert "The message is attached below." in text

    blocks = parts[1].get_payload()
    assert len(blocks) == 3
    per_message = blocks[0]
    assert per_message.keys() == ["Reporting-MTA", "X-Postino-Queue-ID",
                                  "X-Postino-Sender", "Original-Envelope-Id",
                                  "Arrival-Date"]
    assert per_message["Reporting-MTA"] == f"dns; {MYHOSTNAME}"
    assert per_message["X-Postino-Queue-ID"] == qid
    assert per_message["X-Postino-Sender"] == "rfc822; alice@example.com"
    assert per_message["Original-Envelope-Id"] == "ENV-1"
    assert date_of(per_message["Arrival-Date"]) == t_arrival
    bob = blocks[1]
    assert bob.keys() == ["Final-Recipient", "Original-Recipient", "Action",
                          "Status", "Remote-MTA", "Diagnostic-Code",
                          "Last-Attempt-Date"]
    assert bob["Final-Recipient"] == "rfc822; bob@example.net"
    assert bob["Original-Recipient"] == "rfc822; b@example.net"
    assert bob["Action"] == "failed"
    assert bob["Status"] == "5.1.1"
    assert bob["Remote-MTA"] == "dns; mx.example.net"
    assert bob["Diagnostic-Code"] == ("smtp; 550 5.1.1 <bob@example.net>: no "
                                      "such user")
    assert date_of(bob["Last-Attempt-Date"]) == 1700000100
    carol = blocks[2]
    assert carol.keys() == ["Final-Recipient", "Action", "Status",
                            "Diagnostic-Code", "Last-Attempt-Date"]
    assert carol["Final-Recipient"] == "rfc822; carol@example.net"
    assert carol["Action"] == "failed"
    assert carol["Status"] == "5.2.2"
    assert carol["Diagnostic-Code"] == "X-Postino; mailbox full"
    assert date_of(carol["Last-Attempt-Date"]) == 1700000200

    original = parts[2]
    assert original.get_content_type() == "message/rfc822"
    assert original["Content-Description"] == "Undelivered Message"
    inner = original.get_payload(0)
    assert inner["Subject"] == "lunch"
    assert inner["Message-ID"] == "<m1@example.com>"
    assert inner["Received"].startswith("from c.example")
    assert inner.get_payload() == "Shall we meet at noon?\n"
    # The original is attached byte for byte.
    original_qf = QueueFile(instance.queue / "active" / qid)
    assert original_qf.content in qf.content


def test_ret_hdrs_attaches_the_header_only(instance):
    start(instance)
    qid = queue_message(instance, dsn_ret="HDRS")
    write_log(instance, "bounce", qid,
              [entry(BOB, "5.1.1", "failed", "no such user", 1700000100)])
    reply = notify(instance, qid, "failure", "bounce")
    qf, msg = notice(instance, reply["queue_id"])
    parts = msg.get_payload()
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert parts[2]["Content-Description"] == "Undelivered Message Headers"
    header = parts[2].get_payload()
    assert "Subject: lunch\n" in header
    assert "Shall we meet" not in header
    assert b"Shall we meet" not in qf.content
    assert "The header of the message is attached below." in \
        parts[0].get_payload()


def test_large_message_attaches_the_header_only(instance):
    start(instance, "bounce_size_limit = 2000\n")
    body = b"".join(b"line %05d of a long message\n" % i for i in range(200))
    qid = queue_message(instance, content=MESSAGE + body)
    write_log(instance, "bounce", qid,
              [entry(CAROL, "5.1.1", "failed", "no such user", 1700000100)])
    reply = notify(instance, qid, "failure", "bounce")
    qf, msg = notice(instance, reply["queue_id"])
    assert msg.get_payload()[2].get_content_type() == "text/rfc822-headers"
    assert b"line 00001" not in qf.content
    assert b"Subject: lunch" in qf.content


def test_notify_filters_recipients(instance):
    start(instance)
    never = {"address": "nobody@example.net", "notify": "NEVER"}
    success_only = {"address": "sam@example.net", "notify": "SUCCESS"}
    qid = queue_message(instance, recipients=(BOB, never, success_only))
    write_log(instance, "bounce", qid, [
        entry(never, "5.1.1", "failed", "no such user", 1700000100),
        entry(BOB, "5.1.1", "failed", "no such user", 1700000100),
        entry(success_only, "5.1.1", "failed", "no such user", 1700000100),
    ])
    reply = notify(instance, qid, "failure", "bounce")
    qf, msg = notice(instance, reply["queue_id"])
    blocks = msg.get_payload()[1].get_payload()
    assert [b["Final-Recipient"] for b in blocks[1:]] == [
        "rfc822; bob@example.net"]
    assert b"nobody@example.net" not in qf.content.split(b"\n\n--")[0]


def test_notify_never_sends_nothing(instance):
    start(instance)
    never = {"address": "nobody@example.net", "notify": "NEVER"}
    qid = queue_message(instance, recipients=(never,))
    write_log(instance, "bounce", qid,
              [entry(never, "5.1.1", "failed", "no such user", 1700000100)])
    assert notify(instance, qid, "failure", "bounce") == {
        "status": "ok", "queue_id": ""}
    assert incoming(instance) == []
    instance.wait_log(rf"{qid}: sender non-delivery notification "
                      r"suppressed \(NOTIFY\)")


# --- delay and success --------------------------------------------------------

def test_delay_notice(instance):
    start(instance, "maximal_queue_lifetime = 2d\n")
    failure_only = {"address": "fred@example.net", "notify": "FAILURE"}
    qid = queue_message(instance, recipients=(BOB, CAROL, failure_only))
    t_arrival = arrival(instance, qid)
    write_log(instance, "defer", qid, [
        entry(BOB, "4.4.1", "delayed", "connection refused", 1700000100),
        entry(failure_only, "4.4.1", "delayed", "connection refused",
              1700000100),
        {"recipient": "", "action": "warned", "time": 1700000150},
        entry(BOB, "4.4.2", "delayed", "lost connection", 1700000300,
              remote_mta="dns; mx.example.net"),
    ])
    reply = notify(instance, qid, "delay", "defer")
    assert reply["status"] == "ok"
    new_id = reply["queue_id"]
    instance.wait_log(rf"{qid}: sender delay notification: {new_id}")
    qf, msg = notice(instance, new_id)
    parts = check_envelope_and_header(
        instance, qf, msg, new_id, "Delayed Mail (still being retried)",
        "alice@example.com")
    text = text_of(parts[0])
    assert "This is a warning only" in text
    assert "<bob@example.net> (expanded from <b@example.net>): lost " \
        "connection" in text
    assert "connection refused" not in text
    blocks = parts[1].get_payload()
    assert len(blocks) == 2
    bob = blocks[1]
    assert bob.keys() == ["Final-Recipient", "Original-Recipient", "Action",
                          "Status", "Remote-MTA", "Diagnostic-Code",
                          "Last-Attempt-Date", "Will-Retry-Until"]
    assert bob["Action"] == "delayed"
    assert bob["Status"] == "4.4.2"
    assert bob["Diagnostic-Code"] == "X-Postino; lost connection"
    assert date_of(bob["Last-Attempt-Date"]) == 1700000300
    assert date_of(bob["Will-Retry-Until"]) == t_arrival + 2 * 86400
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert parts[2]["Content-Description"] == "Delayed Message Headers"
    assert "Shall we meet" not in parts[2].get_payload()


def test_success_notice(instance):
    start(instance)
    sam = {"address": "sam@example.net", "orcpt": "rfc822;sam@example.net",
           "notify": "SUCCESS"}
    qid = queue_message(instance, recipients=(sam, CAROL))
    write_log(instance, "trace", qid, [
        entry(sam, "2.0.0", "delivered", "delivered to maildir", 1700000100),
        entry(CAROL, "2.0.0", "delivered", "delivered to maildir",
              1700000100),
    ])
    reply = notify(instance, qid, "success", "trace")
    new_id = reply["queue_id"]
    instance.wait_log(rf"{qid}: sender delivery status notification: "
                      rf"{new_id}")
    qf, msg = notice(instance, new_id)
    parts = check_envelope_and_header(
        instance, qf, msg, new_id, "Successful Mail Delivery Report",
        "alice@example.com")
    assert "<sam@example.net>: delivered to maildir" in text_of(parts[0])
    blocks = parts[1].get_payload()
    assert [b["Final-Recipient"] for b in blocks[1:]] == [
        "rfc822; sam@example.net"]
    assert blocks[1]["Action"] == "delivered"
    assert blocks[1]["Status"] == "2.0.0"
    assert blocks[1]["Original-Recipient"] == "rfc822; sam@example.net"
    assert parts[2].get_content_type() == "text/rfc822-headers"


def test_delay_notice_never_goes_to_the_null_sender(instance):
    start(instance)
    qid = queue_message(instance, sender="")
    write_log(instance, "defer", qid,
              [entry(BOB, "4.4.1", "delayed", "refused", 1700000100)])
    assert notify(instance, qid, "delay", "defer") == {"status": "ok",
                                                       "queue_id": ""}
    assert incoming(instance) == []
    instance.wait_log(rf"{qid}: sender delay notification suppressed "
                      r"\(null sender\)")


# --- double bounces -----------------------------------------------------------

def test_failure_of_a_bounce_goes_to_the_postmaster(instance):
    start(instance)
    qid = queue_message(instance, sender="", recipients=(CAROL,))
    write_log(instance, "bounce", qid,
              [entry(CAROL, "5.1.1", "failed", "no such user", 1700000100)])
    reply = notify(instance, qid, "failure", "bounce")
    new_id = reply["queue_id"]
    assert new_id
    instance.wait_log(rf"{qid}: postmaster non-delivery notification: "
                      rf"{new_id}")
    qf, msg = notice(instance, new_id)
    parts = check_envelope_and_header(
        instance, qf, msg, new_id, "Undelivered Mail Returned to Sender",
        "postmaster@example.net", sender="double-bounce@example.net")
    assert "X-Postino-Sender" not in parts[1].get_payload()[0]
    assert parts[2].get_content_type() == "message/rfc822"


def test_failure_of_a_double_bounce_is_dropped(instance):
    start(instance, "2bounce_notice_recipient = admin@example.org\n")
    qid = queue_message(instance, sender="double-bounce@example.net",
                        recipients=({"address": "admin@example.org"},))
    write_log(instance, "bounce", qid, [
        entry({"address": "admin@example.org"}, "5.1.1", "failed",
              "no such user", 1700000100)])
    assert notify(instance, qid, "failure", "bounce") == {"status": "ok",
                                                          "queue_id": ""}
    assert incoming(instance) == []
    instance.wait_log(rf"{qid}: undeliverable postmaster notification "
                      "discarded")


def test_postmaster_address_is_configurable(instance):
    start(instance, "2bounce_notice_recipient = admin@example.org\n"
                    "double_bounce_sender = loop-guard\n")
    qid = queue_message(instance, sender="", recipients=(CAROL,))
    write_log(instance, "bounce", qid,
              [entry(CAROL, "5.1.1", "failed", "no such user", 1700000100)])
    qf, msg = notice(instance, notify(instance, qid, "failure",
                                      "bounce")["queue_id"])
    assert qf.sender == "loop-guard@example.net"
    assert qf.addresses == ["admin@example.org"]
    assert msg["To"] == "admin@example.org"


def test_notify_classes_bounce_copies_the_postmaster(instance):
    start(instance, "notify_classes = resource, software, bounce\n"
                    "bounce_notice_recipient = pm@example.org\n")
    qid = queue_message(instance)
    write_log(instance, "bounce", qid,
              [entry(CAROL, "5.1.1", "failed", "no such user", 1700000100)])
    reply = notify(instance, qid, "failure", "bounce")
    new_id = reply["queue_id"]
    copy_id = instance.wait_log(
        rf"{qid}: postmaster non-delivery notification: (\w+)")[0]
    instance.wait_log(rf"{qid}: sender non-delivery notification: {new_id}")
    assert incoming(instance) == sorted([new_id, copy_id])
    qf, msg = notice(instance, copy_id)
    parts = check_envelope_and_header(
        instance, qf, msg, copy_id, "Postmaster Copy: Undelivered Mail",
        "pm@example.org", sender="double-bounce@example.net")
    assert "postmaster's copy" in text_of(parts[0])
    assert "<carol@example.net>: no such user" in text_of(parts[0])
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert b"Shall we meet" not in qf.content
    # The sender's own notice is unchanged: the whole message.
    qf, msg = notice(instance, new_id)
    assert msg["To"] == "alice@example.com"
    assert msg.get_payload()[2].get_content_type() == "message/rfc822"


# --- 8-bit and SMTPUTF8 -------------------------------------------------------

def test_8bit_original_gives_an_8bit_notice(instance):
    start(instance)
    content = MESSAGE + "Caf\u00e9 at noon?\n".encode()
    qid = queue_message(instance, content=content, encoding="8bitmime")
    write_log(instance, "bounce", qid,
              [entry(CAROL, "5.1.1", "failed", "no such user", 1700000100)])
    qf, msg = notice(instance, notify(instance, qid, "failure",
                                      "bounce")["queue_id"])
    assert qf.attributes["encoding"] == "8bitmime"
    assert "smtputf8" not in qf.attributes
    assert msg["Content-Transfer-Encoding"] == "8bit"
    parts = msg.get_payload()
    assert parts[0]["Content-Transfer-Encoding"] is None
    assert parts[2]["Content-Transfer-Encoding"] == "8bit"
    assert "Caf\u00e9".encode() in qf.content
    lines_bounded(qf.content)


def test_smtputf8_original_gives_a_global_notice(instance):
    start(instance)
    jorg = {"address": "j\u00f6rg@example.net"}
    content = ("Subject: gr\u00fc\u00dfe\nTo: j\u00f6rg@example.net\n\n"
               "hallo\n").encode()
    qid = queue_message(instance, sender="\u00e5sa@example.com",
                        recipients=(jorg,), content=content,
                        encoding="8bitmime", smtputf8="1")
    write_log(instance, "bounce", qid,
              [entry(jorg, "5.1.1", "failed", "no such user", 1700000100)])
    reply = notify(instance, qid, "failure", "bounce")
    qf, msg = notice(instance, reply["queue_id"])
    assert qf.attributes["smtputf8"] == "1"
    assert qf.attributes["encoding"] == "8bitmime"
    assert qf.addresses == ["\u00e5sa@example.com"]
    assert msg.get_param("report-type") == "global-delivery-status"
    parts = msg.get_payload()
    assert parts[0].get_content_type() == "text/plain"
    assert parts[0].get_content_charset() == "utf-8"
    assert parts[1].get_content_type() == "message/global-delivery-status"
    assert parts[2].get_content_type() == "message/global"
    assert "Final-Recipient: utf-8; j\u00f6rg@example.net".encode() in \
        qf.content
    assert "X-Postino-Sender: utf-8; \u00e5sa@example.com".encode() in \
        qf.content


# --- bad requests -------------------------------------------------------------

BAD_REQUESTS = [
    dict(request="deliver"),
    dict(kind="bounce"),
    dict(queue_id="../etc"),
    dict(queue_id=""),
    dict(queue_file="/etc/passwd"),
    dict(queue_file="active/../../etc/passwd"),
    dict(queue_file="corrupt/{qid}"),
    dict(queue_file="active/ABCDEF123"),
    dict(log="bounce/ABCDEF123"),
    dict(log="active/{qid}"),
    dict(log="/tmp/{qid}"),
    dict(log="bounce/../defer/{qid}"),
]


def test_malformed_requests_are_refused(instance):
    start(instance)
    qid = queue_message(instance)
    write_log(instance, "bounce", qid,
              [entry(CAROL, "5.1.1", "failed", "no such user", 1700000100)])
    for bad in BAD_REQUESTS:
        attrs = dict(request="notify", kind="failure", queue_id=qid,
                     queue_file=f"active/{qid}", log=f"bounce/{qid}")
        attrs.update({k: v.format(qid=qid) for k, v in bad.items()})
        assert ask(instance, **attrs) == {"status": "defer",
                                          "text": "bad request"}, bad
    missing = dict(request="notify", kind="failure", queue_id=qid,
                   queue_file=f"active/{qid}")
    assert ask(instance, **missing)["status"] == "defer"
    instance.wait_log(r"warning: bad request: bad log", count=4)
    assert incoming(instance) == []
    # Garbage instead of a record: no reply, no crash, the service goes on.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(instance.queue / "private" / "bounce"))
    sock.sendall(b"\xff\xff\xff\xffjunk")
    sock.settimeout(30)
    assert sock.recv(100) == b""
    sock.close()
    assert notify(instance, qid, "failure", "bounce")["status"] == "ok"


def test_missing_queue_file_is_deferred(instance):
    start(instance)
    qid = queue_message(instance)
    os.unlink(instance.queue / "active" / qid)
    reply = notify(instance, qid, "failure", "bounce")
    assert reply["status"] == "defer"
    assert f"active/{qid}" in reply["text"]
    instance.wait_log(rf"warning: {qid}: sender non-delivery notification "
                      "not sent")
    assert incoming(instance) == []


def test_empty_log_sends_nothing(instance):
    start(instance)
    qid = queue_message(instance)
    assert notify(instance, qid, "failure", "bounce") == {
        "status": "ok", "queue_id": ""}
    instance.wait_log(rf"{qid}: sender non-delivery notification "
                      r"suppressed \(no recipient in the log\)")
    assert incoming(instance) == []


def test_no_cleanup_is_deferred(instance):
    start(instance)
    qid = queue_message(instance)
    write_log(instance, "bounce", qid,
              [entry(CAROL, "5.1.1", "failed", "no such user", 1700000100)])
    # The same instance without its cleanup service.
    instance.write_master_cf(f"bounce unix - - n - 0 {BIN}/bounce\n")
    assert instance.postino("reload").returncode == 0
    instance.wait_log(r"reload")
    deadline = time.monotonic() + 20
    while (instance.queue / "private" / "cleanup").exists():
        assert time.monotonic() < deadline, "cleanup socket still there"
        time.sleep(0.1)
    reply = notify(instance, qid, "failure", "bounce")
    assert reply["status"] == "defer"
    assert "cleanup" in reply["text"]
    assert incoming(instance) == []
    instance.wait_log(rf"warning: {qid}: sender non-delivery notification "
                      r"not sent: .*cleanup")
