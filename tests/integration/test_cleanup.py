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


def cleanup_line(extra=""):
    return f"cleanup unix - - n - 0 {BIN}/cleanup{extra}\n"


def start(inst, main_cf="", extra=""):
    inst.write_main_cf("myhostname = mx.example.net\n" + main_cf)
    inst.write_master_cf(cleanup_line(extra))
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
