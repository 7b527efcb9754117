"""The virtual delivery agent: a real instance with cleanup and virtual; a
message queued through cleanup and moved to active/ (as qmgr will), one
delivery request on private/virtual exactly as qmgr sends it
(records.deliver), and the Maildir or mbox file it left, with its owner."""
import os
import pathlib
import re
import socket

import pytest

from conftest import BIN
from records import deliver, delivery_request, read_results, send_message

MESSAGE = (b"From: alice@example.com\nTo: bob@example.net\nSubject: hi\n"
           b"Message-ID: <v1@example.com>\n\nFrom the start\nbody\n")
ROOT_UID = ROOT_GID = 5000   # the mailbox owner when the tests run as root


def owner(inst):
    """The uid and gid of the virtual mailboxes."""
    if inst.uid == 0:
        return ROOT_UID, ROOT_GID
    return inst.uid, inst.gid


def start(inst, mailboxes="", main_cf=""):
    uid, gid = owner(inst)
    base = inst.root / "vmail"
    (base / "example.net").mkdir(parents=True)
    os.chown(base, uid, gid)
    os.chown(base / "example.net", uid, gid)
    os.chmod(base / "example.net", 0o700)
    table = inst.etc / "vmailbox"
    inst._write(table, "bob@example.net   example.net/bob/\n"
                       "carol@example.net example.net/carol\n"
                       "@catchall.example example.net/catchall/\n"
                       + mailboxes)
    inst.write_main_cf(
        "myhostname = mx.example.net\n"
        "virtual_mailbox_domains = example.net, catchall.example\n"
        f"virtual_mailbox_base = {base}\n"
        f"virtual_mailbox_maps = texthash:{table}\n"
        f"virtual_uid_maps = static:{uid}\n"
        f"virtual_gid_maps = static:{gid}\n"
        # nobody's uid is high, but the tests lower the bound anyway, as
        # an admin would for a low uid.
        + ("" if inst.uid == 0 else "virtual_minimum_uid = 1\n")
        + main_cf)
    inst.write_master_cf(inst.cleanup_line() +
                         f"virtual unix - n n - - {BIN}/virtual\n")
    inst.start()
    return base / "example.net"


def queue(inst, recipients, content=MESSAGE, sender="alice@example.com"):
    opened, reply = send_message(inst.queue / "private" / "cleanup", sender,
                                 recipients, content)
    assert reply["status"] == "ok", reply
    qid = reply["queue_id"]
    os.rename(inst.queue / "incoming" / qid, inst.queue / "active" / qid)
    return qid


def run(inst, recipients, **kw):
    qid = queue(inst, [r if isinstance(r, str) else r["address"]
                       for r in recipients], **kw)
    return qid, deliver(inst.queue / "private" / "virtual", inst.queue, qid,
                        recipients)


def files_in(path):
    return sorted(p for p in pathlib.Path(path).iterdir())


def content_after_headers(data):
    return data.split(b"\n", 2)[2]


def test_delivery_to_a_maildir(instance):
    box = start(instance)
    qid, results = run(instance, ["bob@example.net"])
    assert results[0]["status"] == "sent"
    assert results[0]["dsn"] == "2.0.0"
    assert results[0]["text"] == "delivered to maildir"
    new = files_in(box / "bob" / "new")
    assert len(new) == 1
    assert files_in(box / "bob" / "tmp") == []
    data = new[0].read_bytes()
    assert data.startswith(b"Return-Path: <alice@example.com>\n"
                           b"Delivered-To: bob@example.net\n")
    body = content_after_headers(data)
    assert body.startswith(b"Received: ")
    assert body.endswith(MESSAGE)
    assert new[0].name.endswith(f",S={len(data)}")
    uid, gid = owner(instance)
    for p in (box / "bob", box / "bob" / "new", new[0]):
        st = p.stat()
        assert (st.st_uid, st.st_gid) == (uid, gid), p
    assert new[0].stat().st_mode & 0o077 == 0
    instance.wait_log(rf"{qid}: to=<bob@example\.net>, relay=virtual, "
                      r"delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, "
                      r"status=sent \(delivered to maildir\)")


def test_delivery_to_an_mbox_and_the_catchall(instance):
    box = start(instance)
    qid, results = run(instance, ["carol@example.net", "x@catchall.example"])
    assert [r["text"] for r in results] == ["delivered to mailbox",
                                            "delivered to maildir"]
    data = (box / "carol").read_bytes()
    first, rest = data.split(b"\n", 1)
    assert first.startswith(b"From alice@example.com ")
    assert rest.startswith(b"Return-Path: <alice@example.com>\n"
                           b"Delivered-To: carol@example.net\n")
    # mboxrd: the body line that starts with "From " is quoted.
    assert b"\n>From the start\n" in rest
    assert rest.endswith(b"body\n\n")
    uid, gid = owner(instance)
    st = (box / "carol").stat()
    assert (st.st_uid, st.st_gid) == (uid, gid)
    assert st.st_mode & 0o777 == 0o600
    assert len(files_in(box / "catchall" / "new")) == 1
    instance.wait_log(rf"{qid}: to=<carol@example\.net>, relay=virtual, .*"
                      r"status=sent \(delivered to mailbox\)")


def test_null_sender_return_path(instance):
    box = start(instance)
    qid, results = run(instance, ["bob@example.net"], sender="")
    assert results[0]["status"] == "sent"
    data = files_in(box / "bob" / "new")[0].read_bytes()
    assert data.startswith(b"Return-Path: <>\nDelivered-To: bob@example.net\n")


def test_unknown_mailbox_bounces(instance):
    box = start(instance)
    qid, results = run(instance, ["dave@example.net", "bob@example.net"])
    assert results[0]["status"] == "bounced"
    assert results[0]["dsn"] == "5.1.1"
    assert results[0]["text"] == 'unknown user: "dave@example.net"'
    assert results[1]["status"] == "sent"
    assert not (box / "dave").exists()
    instance.wait_log(rf"{qid}: to=<dave@example\.net>, relay=virtual, .*"
                      r"dsn=5\.1\.1, status=bounced \(unknown user: "
                      r"\"dave@example\.net\"\)")


def test_domain_not_virtual_is_deferred(instance):
    start(instance)
    qid, results = run(instance, ["bob@other.example"])
    assert results[0]["status"] == "deferred"
    assert results[0]["dsn"] == "4.3.5"
    assert "virtual_mailbox_domains" in results[0]["text"]


def test_maildir_quota_defers(instance):
    box = start(instance, main_cf=(
        "virtual_mailbox_limit_maps = inline:{ bob@example.net = 1000 }\n"))
    # Room for one message of this size, not for two.
    qid, results = run(instance, ["bob@example.net"])
    assert results[0]["status"] == "sent"
    # A file of another writer, sized by its name, fills the box up.
    uid, gid = owner(instance)
    extra = box / "bob" / "cur" / "1700000000.x.host,S=700:2,S"
    extra.write_bytes(b"x")
    os.chown(extra, uid, gid)
    qid, results = run(instance, ["bob@example.net"])
    assert results[0]["status"] == "deferred"
    assert results[0]["dsn"] == "4.2.2"
    assert results[0]["text"] == "mailbox full"
    assert len(files_in(box / "bob" / "new")) == 1
    instance.wait_log(rf"{qid}: to=<bob@example\.net>, relay=virtual, .*"
                      r"dsn=4\.2\.2, status=deferred \(mailbox full\)")


def test_mbox_quota_defers(instance):
    box = start(instance, main_cf="virtual_mailbox_limit = 600\n")
    uid, gid = owner(instance)
    mbox = box / "carol"
    mbox.write_bytes(b"From a@b Thu Jan  1 00:00:00 2026\n" + b"x" * 400 +
                     b"\n\n")
    os.chown(mbox, uid, gid)
    os.chmod(mbox, 0o600)
    size = mbox.stat().st_size
    qid, results = run(instance, ["carol@example.net"])
    assert results[0]["status"] == "deferred"
    assert results[0]["dsn"] == "4.2.2"
    assert results[0]["text"] == "mailbox full"
    assert mbox.stat().st_size == size


def test_symlinked_mailboxes_are_refused(instance, tmp_path):
    box = start(instance)
    target = instance.root / "elsewhere"
    target.write_bytes(b"")
    os.chmod(target, 0o666)
    os.symlink(target, box / "carol")
    target_dir = instance.root / "elsewhere.d"
    target_dir.mkdir()
    os.chmod(target_dir, 0o777)
    os.symlink(target_dir, box / "bob")
    # Targets that belong to the mailbox owner: only the symlink itself
    # may make the agent refuse.
    uid, gid = owner(instance)
    for p in (target, target_dir):
        os.chown(p, uid, gid)
        os.lchown(box / ("carol" if p == target else "bob"), uid, gid)
    qid, results = run(instance, ["carol@example.net", "bob@example.net"])
    assert [r["status"] for r in results] == ["deferred", "deferred"]
    assert all(r["dsn"].startswith("4.") for r in results)
    assert target.read_bytes() == b""
    assert list(target_dir.iterdir()) == []


def test_uid_below_minimum_is_refused(instance):
    uid, gid = owner(instance)
    box = start(instance, main_cf=f"virtual_minimum_uid = {uid + 1}\n")
    qid, results = run(instance, ["bob@example.net"])
    assert results[0]["status"] == "deferred"
    assert results[0]["dsn"] == "4.3.5"
    assert (f"uid {uid} of bob@example.net is below virtual_minimum_uid "
            f"{uid + 1}") in results[0]["text"]
    assert not (box / "bob").exists()


def test_unsafe_mailbox_path_is_refused(instance):
    box = start(instance, mailboxes="eve@example.net ../../etc/\n"
                                    "root@example.net /etc/passwd\n")
    qid, results = run(instance, ["eve@example.net", "root@example.net"])
    assert [r["status"] for r in results] == ["deferred", "deferred"]
    assert all("unsafe mailbox path" in r["text"] for r in results)


def test_delivered_to_loop_bounces(instance):
    box = start(instance)
    looped = (b"Delivered-To: someone@example.net\n"
              b"Delivered-To: BOB@example.net\n" + MESSAGE)
    qid, results = run(instance, ["bob@example.net", "carol@example.net"],
                       content=looped)
    assert results[0]["status"] == "bounced"
    assert results[0]["dsn"] == "5.4.6"
    assert results[0]["text"] == "mail forwarding loop for bob@example.net"
    assert results[1]["status"] == "sent"
    assert not (box / "bob").exists()


def test_uid_and_gid_from_tables(instance):
    if instance.uid != 0:
        pytest.skip("only root can deliver as several users")
    box = start(instance, main_cf=(
        "virtual_uid_maps = inline:{ bob@example.net = 5001 } static:5000\n"
        "virtual_gid_maps = inline:{ bob@example.net = 5002 } static:5000\n"))
    # A domain directory shared by several owners: each may pass through.
    os.chmod(box, 0o711)
    (box / "bob").mkdir()
    os.chown(box / "bob", 5001, 5002)
    qid, results = run(instance, ["bob@example.net", "carol@example.net"])
    assert [r["status"] for r in results] == ["sent", "sent"]
    new = files_in(box / "bob" / "new")
    assert [(p.stat().st_uid, p.stat().st_gid) for p in new] == [(5001, 5002)]
    st = (box / "carol").stat()
    assert (st.st_uid, st.st_gid) == (5000, 5000)


def test_requests_in_a_row_share_one_commit_and_the_quota(instance):
    # Three requests waiting at once on one connection: virtual writes
    # every Maildir file, fsyncs them together, and only then tells the
    # results, each request's before its status=done.  A file not yet
    # fsynced is in new/ all the same, and counts for the next quota.
    box = start(instance, main_cf=(
        "virtual_mailbox_limit_maps = inline:{ bob@example.net = 400 }\n"))
    # Each message takes 255 bytes: room for one, not for two.
    recipients = ["bob@example.net", "bob@example.net",
                  "dave@catchall.example"]
    qids = [queue(instance, [r]) for r in recipients]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(instance.queue / "private" / "virtual"))
    try:
        sock.sendall(b"".join(delivery_request(instance.queue, qid, [r])
                              for qid, r in zip(qids, recipients)))
        results = []
        for n in range(3):
            [result], done = read_results(sock, 1)
            if n == 0:
                assert len(files_in(box / "bob" / "new")) == 1
                assert len(files_in(box / "catchall" / "new")) == 1
            assert done["more"] == "1"
            results.append(result)
    finally:
        sock.close()
    assert [r["status"] for r in results] == ["sent", "deferred", "sent"]
    assert results[1]["dsn"] == "4.2.2"
    assert results[1]["text"] == "mailbox full"
    for qid, r, status in zip(qids, recipients, ("sent", "deferred", "sent")):
        instance.wait_log(rf"{qid}: to=<{re.escape(r)}>, relay=virtual, "
                          rf".*status={status} ")
