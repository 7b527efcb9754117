"""postino-queue: the admin's listing (with deferral reasons, as mailq
shows them too) and hold, release, requeue and delete by queue ID or ALL."""
import os
import pwd
import re
import subprocess

import pytest

from conftest import BIN
from records import encode
from test_sendmail import MAILQ, Submission, queue_file

QUEUE = str(BIN / "postino-queue")


def write_defer_log(inst, qid, entries):
    path = inst.queue / "defer" / qid
    path.parent.mkdir(exist_ok=True)
    with open(path, "ab") as f:
        for e in entries:
            f.write(encode(list(e.items())))
    owner = pwd.getpwnam("postino") if inst.uid == 0 else None
    os.chown(path, owner.pw_uid if owner else inst.uid,
             owner.pw_gid if owner else inst.gid)


def admin(inst, *args, stdin=None):
    argv = inst.as_user([QUEUE, "-c", str(inst.etc), *args])
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          input=stdin)


@pytest.fixture
def queue(instance):
    sub = Submission(instance, ["showq"])
    instance.start()
    return sub


def test_listing_shows_the_reason_of_each_deferral(queue):
    inst = queue.inst
    queue_file(inst, "deferred", "D1B2C3D4E5", b"a@example.com",
               [b"x@example.org", b"y@example.org", b"z@example.net"], b"q")
    write_defer_log(inst, "D1B2C3D4E5", [
        {"recipient": "x@example.org", "status": "4.4.1", "action": "delayed",
         "text": "old reason", "time": "1"},
        {"recipient": "x@example.org", "status": "4.4.1", "action": "delayed",
         "text": "connect to mx.example.org[192.0.2.1]:25: Connection "
                 "refused", "time": "2"},
        {"recipient": "y@example.org", "status": "4.4.1", "action": "delayed",
         "text": "connect to mx.example.org[192.0.2.1]:25: Connection "
                 "refused", "time": "2"},
        {"recipient": "z@example.net", "status": "4.2.2", "action": "delayed",
         "text": "mailbox full\x1b[2J", "time": "2"},
    ])
    expected = re.compile(
        r"^D1B2C3D4E5 +1 .* a@example.com\n"
        r"\(connect to mx.example.org\[192.0.2.1\]:25: Connection refused\)\n"
        r" {41}x@example.org\n {41}y@example.org\n"
        r"\(mailbox full\?\[2J\)\n {41}z@example.net\n\n", re.M)
    r = queue.run(program=MAILQ)
    assert r.returncode == 0, r.stderr
    assert expected.search(r.stdout.decode()), r.stdout.decode()
    r = admin(inst)
    assert r.returncode == 0, r.stderr
    assert expected.search(r.stdout), r.stdout
    assert "old reason" not in r.stdout


def test_hold_release_requeue_and_delete(queue):
    inst = queue.inst
    q = inst.queue
    queue_file(inst, "deferred", "E1B2C3D4E5", b"a@example.com",
               [b"x@example.org"], b"one")
    queue_file(inst, "incoming", "F1B2C3D4E5", b"a@example.com",
               [b"y@example.org"], b"two")
    write_defer_log(inst, "E1B2C3D4E5", [
        {"recipient": "x@example.org", "status": "4.0.0",
         "action": "delayed", "text": "later", "time": "1"}])

    r = admin(inst, "-h", "E1B2C3D4E5")
    assert r.returncode == 0, r.stderr
    assert (q / "hold" / "E1B2C3D4E5").exists()
    assert not (q / "deferred" / "E1B2C3D4E5").exists()
    assert "E1B2C3D4E5: placed on hold" in r.stderr
    assert "Placed on hold: 1 message" in r.stderr
    out = queue.run(program=MAILQ).stdout.decode()
    assert re.search(r"^E1B2C3D4E5!", out, re.M), out

    r = admin(inst, "-H", "E1B2C3D4E5")
    assert r.returncode == 0, r.stderr
    assert (q / "incoming" / "E1B2C3D4E5").exists()
    assert "Released from hold: 1 message" in r.stderr

    os.rename(q / "incoming" / "E1B2C3D4E5", q / "deferred" / "E1B2C3D4E5")
    r = admin(inst, "-r", "ALL")
    assert r.returncode == 0, r.stderr
    assert (q / "incoming" / "E1B2C3D4E5").exists()
    assert "Requeued: 1 message" in r.stderr

    r = admin(inst, "-d", "-", stdin="E1B2C3D4E5\nF1B2C3D4E5\n")
    assert r.returncode == 0, r.stderr
    assert "Deleted: 2 messages" in r.stderr
    assert not (q / "incoming" / "E1B2C3D4E5").exists()
    assert not (q / "incoming" / "F1B2C3D4E5").exists()
    assert not (q / "defer" / "E1B2C3D4E5").exists()
    assert queue.run(program=MAILQ).stdout.decode() == "Mail queue is empty\n"


def test_bad_ids_and_missing_messages_are_reported(queue):
    inst = queue.inst
    r = admin(inst, "-d", "../../etc/passwd")
    assert r.returncode == 1
    assert "not a queue ID" in r.stderr
    r = admin(inst, "-H", "A1B2C3D4E5")
    assert r.returncode == 0
    assert "A1B2C3D4E5: no such message in the hold queue" in r.stderr
    r = admin(inst, "-x")
    assert r.returncode != 0 and "usage:" in r.stderr


def test_only_root_or_mail_owner_may_change_the_queue(queue):
    inst = queue.inst
    if os.geteuid() != 0 or inst.user is not None:
        pytest.skip("needs root and an instance with its own mail_owner")
    pw = pwd.getpwnam("nobody")
    argv = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
            "--clear-groups", QUEUE, "-c", str(inst.etc), "-d", "ALL"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "only root or postino may change the queue" in r.stderr
