"""The whole path, end to end: SMTP in, queue manager, delivery into
Maildirs, notices (RFC 3464) back to the sender, retries, expiry, and
crashes of the queue manager and of a delivery agent in the middle of a
thousand messages."""
import os
import re
import signal
import smtplib
import subprocess
import threading
import time

import pytest

from conftest import BIN
from delivery_instance import (maildir_files, read_message, send,
                               start_delivery, wait_maildir,
                               wait_queue_empty, write_table)

SENDER = "sender@example.test"


def message(subject, body="Hello.\n", extra=""):
    """A message with CRLF line ends, as SMTP wants them."""
    text = (f"From: {SENDER}\nTo: demo@example.test\nSubject: {subject}\n"
            f"Message-ID: <{subject.replace(' ', '.')}@client.example>\n"
            f"{extra}\n{body}")
    return text.replace("\n", "\r\n")



def test_mail_reaches_a_virtual_mailbox(instance):
    d = start_delivery(instance)
    reply = send(d, SENDER, ["Demo@Example.Test"], message("first"))
    qid = re.search(r"queued as (\w+)", reply).group(1)
    [msg] = wait_maildir(d.mailbox("demo"), 1, inst=instance)
    assert msg["Subject"] == "first"
    assert msg["Return-Path"] == f"<{SENDER}>"
    assert msg["Delivered-To"].lower() == "demo@example.test"
    assert msg.get_content() == "Hello.\n"
    path = maildir_files(d.mailbox("demo"))[0]
    assert os.stat(path).st_uid == d.vmail_uid
    instance.wait_log(rf"(?i){qid}: to=<demo@example.test>.*relay=virtual, "
                      r"delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, "
                      r"dsn=2\.0\.0, status=sent \(delivered to maildir\)")
    instance.wait_log(rf"{qid}: removed")
    wait_queue_empty(instance)


def dsn_parts(notice):
    """(human part, per-message fields, [per-recipient fields], original)."""
    assert notice.get_content_type() == "multipart/report"
    assert notice.get_param("report-type") == "delivery-status"
    parts = list(notice.iter_parts())
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    human, status, original = parts
    assert human.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    blocks = status.get_payload()
    return human, blocks[0], blocks[1:], original


def test_error_transport_bounces_with_an_rfc3464_report(instance):
    d = start_delivery(instance, transports=(
        "nowhere.example error:5.1.2 no mail for this domain here\n"))
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=30) as s:
        s.ehlo("client.example")
        assert s.mail(SENDER, ["RET=FULL", "ENVID=env-123"])[0] == 250
        assert s.rcpt("bob@nowhere.example",
                      ["NOTIFY=FAILURE",
                       "ORCPT=rfc822;Bob@Nowhere.Example"])[0] == 250
        assert s.data(message("will bounce").encode())[0] == 250
    [notice] = wait_maildir(d.mailbox("sender"), 1, inst=instance)
    assert notice["From"].startswith("MAILER-DAEMON@")
    assert notice["Return-Path"] == "<>"
    assert notice["To"] == SENDER
    assert notice["Auto-Submitted"] == "auto-replied"
    assert "Undelivered Mail Returned to Sender" in notice["Subject"]
    human, per_message, per_rcpt, original = dsn_parts(notice)
    assert "bob@nowhere.example" in human.get_content()
    assert per_message["Reporting-MTA"] == "dns; mx.example.net"
    assert per_message["Original-Envelope-Id"] == "env-123"
    assert per_message["Arrival-Date"]
    [r] = per_rcpt
    assert r["Final-Recipient"].lower() == "rfc822; bob@nowhere.example"
    assert r["Original-Recipient"].replace(" ", "") == \
        "rfc822;Bob@Nowhere.Example"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.2"
    assert "no mail for this domain here" in r["Diagnostic-Code"]
    assert r["Last-Attempt-Date"]
    assert original.get_content_type() == "message/rfc822"
    inner = original.get_payload()[0]
    assert inner["Subject"] == "will bounce"
    assert "Hello." in inner.get_content()
    wait_queue_empty(instance)


def test_notify_success_sends_a_success_notice(instance):
    d = start_delivery(instance)
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=30) as s:
        s.ehlo("client.example")
        assert s.mail(SENDER, ["RET=HDRS"])[0] == 250
        assert s.rcpt("demo@example.test", ["NOTIFY=SUCCESS"])[0] == 250
        assert s.data(message("tell me").encode())[0] == 250
    wait_maildir(d.mailbox("demo"), 1, inst=instance)
    [notice] = wait_maildir(d.mailbox("sender"), 1, inst=instance)
    _, _, [r], original = dsn_parts(notice)
    assert r["Action"] == "delivered"
    assert r["Status"] == "2.0.0"
    assert original.get_content_type() == "text/rfc822-headers"
    assert "Subject: tell me" in original.get_content()


def test_a_bounce_is_never_bounced_to_the_null_sender(instance):
    d = start_delivery(instance, transports=(
        "nowhere.example error:5.1.1 gone\n"))
    send(d, "<>", ["x@nowhere.example"], message("from the null sender"))
    [notice] = wait_maildir(d.mailbox("postmaster"), 1, inst=instance)
    assert "Undelivered" in notice["Subject"]
    wait_queue_empty(instance)
    time.sleep(1)
    for user in ("sender", "demo", "other"):
        assert maildir_files(d.mailbox(user)) == []
    assert len(maildir_files(d.mailbox("postmaster"))) == 1


def deferral_times(log, qid):
    times = []
    for line in log.splitlines():
        if f"{qid}: to=" in line and "status=deferred" in line:
            times.append(line)
    return times


def test_deferred_mail_is_retried_with_growing_delays_then_delivered(
        instance):
    d = start_delivery(instance, transports=(
        "demo@example.test retry:4.2.1 mailbox temporarily disabled\n"))
    reply = send(d, SENDER, ["demo@example.test"], message("patience"))
    qid = re.search(r"queued as (\w+)", reply).group(1)
    instance.wait_log(rf"{qid}: to=<demo@example.test>.*status=deferred "
                      r"\(mailbox temporarily disabled\)", timeout=30,
                      count=3)
    deferred = instance.queue / "deferred" / qid
    assert deferred.exists() or (instance.queue / "active" / qid).exists()
    r = subprocess.run(instance.as_user([str(BIN / "postino-queue"), "-c",
                                         str(instance.etc)]),
                       capture_output=True, text=True, timeout=30)
    assert "(mailbox temporarily disabled)" in r.stdout, r.stdout
    write_table(instance, "transport", "# the cause is gone\n")
    [msg] = wait_maildir(d.mailbox("demo"), 1, timeout=30, inst=instance)
    assert msg["Subject"] == "patience"
    wait_queue_empty(instance)
    stamps = re.findall(rf"(\d\d:\d\d:\d\d).*{qid}: to=.*status=deferred",
                        instance.log())
    secs = [int(h) * 3600 + int(m) * 60 + int(s)
            for h, m, s in (t.split(":") for t in stamps)]
    gaps = [b - a for a, b in zip(secs, secs[1:])]
    assert len(gaps) >= 2 and gaps[-1] >= gaps[0], stamps


def test_flush_retries_deferred_mail_at_once(instance):
    d = start_delivery(instance, main_cf="minimal_backoff_time = 600s\n"
                       "maximal_backoff_time = 600s\n"
                       "queue_run_delay = 600s\n",
                       transports="demo@example.test retry:4.0.0 later\n")
    reply = send(d, SENDER, ["demo@example.test"], message("flush me"))
    qid = re.search(r"queued as (\w+)", reply).group(1)
    instance.wait_log(rf"{qid}: to=<demo@example.test>.*status=deferred")
    write_table(instance, "transport", "# fine now\n")
    time.sleep(1.2)  # tables are checked for changes at most once a second
    r = instance.postino("flush")
    assert r.returncode == 0, r.stderr
    [msg] = wait_maildir(d.mailbox("demo"), 1, timeout=15, inst=instance)
    assert msg["Subject"] == "flush me"


def test_expired_mail_is_returned_to_the_sender(instance):
    d = start_delivery(instance, main_cf="maximal_queue_lifetime = 3s\n",
                       transports="slow.example retry:4.4.1 host is down\n")
    reply = send(d, SENDER, ["x@slow.example"], message("too late"))
    qid = re.search(r"queued as (\w+)", reply).group(1)
    [notice] = wait_maildir(d.mailbox("sender"), 1, timeout=30,
                            inst=instance)
    _, _, [r], original = dsn_parts(notice)
    assert r["Action"] == "failed"
    assert r["Status"].startswith("4.4.1") or r["Status"].startswith("5.")
    assert "host is down" in r["Diagnostic-Code"] or \
        "host is down" in notice.get_body().get_content()
    instance.wait_log(rf"{qid}: from=<{SENDER}>, status=expired, "
                      r"returned to sender")
    wait_queue_empty(instance)


COUNT = 1000


def send_many(d, count, subject_prefix, threads=4,
              recipient="demo@example.test"):
    """count messages over a few reused SMTP sessions; returns the threads
    and the list of the numbers that got a 250."""
    accepted = []
    lock = threading.Lock()

    def worker(first):
        with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=60) as s:
            s.ehlo("client.example")
            for n in range(first, count, threads):
                s.sendmail(SENDER, [recipient],
                           message(f"{subject_prefix} {n}").encode())
                with lock:
                    accepted.append(n)

    workers = [threading.Thread(target=worker, args=(i,))
               for i in range(threads)]
    for w in workers:
        w.start()
    return workers, accepted


def check_all_delivered(d, inst, count, prefix, timeout=120, maildir=None):
    maildir = maildir or d.mailbox("demo")
    wait_maildir(maildir, count, timeout=timeout, inst=inst)
    wait_queue_empty(inst, timeout=timeout)
    msgs = [read_message(p) for p in maildir_files(maildir)]
    subjects = [m["Subject"] for m in msgs]
    unique = set(subjects)
    duplicates = len(subjects) - len(unique)
    print(f"{prefix}: {len(unique)} of {count} messages delivered, "
          f"{duplicates} duplicates")
    missing = {f"{prefix} {n}" for n in range(count)} - unique
    assert not missing, f"lost: {sorted(missing)[:10]}"
    return duplicates


@pytest.mark.parametrize("victim", ["qmgr", "virtual"])
def test_kill_9_in_the_middle_of_a_thousand_messages_loses_nothing(
        instance, victim):
    d = start_delivery(instance)
    workers, accepted = send_many(d, COUNT, f"crash-{victim}")
    deadline = time.monotonic() + 60
    while len(maildir_files(d.mailbox("demo"))) < COUNT // 3:
        assert time.monotonic() < deadline, instance.log()
        time.sleep(0.02)
    pids = instance.pids_of(victim)
    assert pids, f"no {victim} process running"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for w in workers:
        w.join(timeout=120)
    assert len(accepted) == COUNT
    check_all_delivered(d, instance, COUNT, f"crash-{victim}")


def test_a_killed_qmgr_comes_back_by_itself(instance):
    """After kill -9 the master starts a new qmgr within seconds, with no
    client to trigger it: it finds the work left in the queue."""
    d = start_delivery(instance, main_cf="minimal_backoff_time = 600s\n"
                       "maximal_backoff_time = 600s\n"
                       "queue_run_delay = 600s\n",
                       transports="demo@example.test retry:4.0.0 later\n")
    reply = send(d, SENDER, ["demo@example.test"], message("left behind"))
    qid = re.search(r"queued as (\w+)", reply).group(1)
    instance.wait_log(rf"{qid}: to=<demo@example.test>.*status=deferred")
    deferred = instance.queue / "deferred" / qid
    deadline = time.monotonic() + 10
    while not deferred.exists():
        assert time.monotonic() < deadline, instance.log()
        time.sleep(0.05)
    write_table(instance, "transport", "# fine now\n")
    now = time.time() - 1
    os.utime(deferred, (now, now))
    [pid] = instance.pids_of("qmgr")
    os.kill(pid, signal.SIGKILL)
    [msg] = wait_maildir(d.mailbox("demo"), 1, timeout=15, inst=instance)
    assert msg["Subject"] == "left behind"


def test_kill_9_of_local_in_the_middle_of_a_thousand_messages(instance):
    """The same for the local delivery agent, delivering into a real Unix
    user's ~/Maildir (as root only: local must act as that user)."""
    if instance.uid != 0:
        pytest.skip("local delivers to another user only as root")
    import pwd as pwd_module
    home = instance.root / "home" / "ptest3"
    try:
        pwd_module.getpwnam("ptest3")
        subprocess.run(["usermod", "-d", str(home), "ptest3"], check=True,
                       capture_output=True)
    except KeyError:
        subprocess.run(["useradd", "-M", "-d", str(home), "-s",
                        "/usr/sbin/nologin", "ptest3"], check=True,
                       capture_output=True)
    pw = pwd_module.getpwnam("ptest3")
    home.mkdir(parents=True)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    d = start_delivery(instance, main_cf="home_mailbox = Maildir/\n")
    maildir = home / "Maildir"
    workers, accepted = send_many(d, COUNT, "crash-local",
                                  recipient="ptest3@localhost")
    deadline = time.monotonic() + 60
    while len(maildir_files(maildir)) < COUNT // 3:
        assert time.monotonic() < deadline, instance.log()
        time.sleep(0.02)
    pids = instance.pids_of("local")
    assert pids, "no local process running"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for w in workers:
        w.join(timeout=120)
    assert len(accepted) == COUNT
    check_all_delivered(d, instance, COUNT, "crash-local", maildir=maildir)
    assert all(p.stat().st_uid == pw.pw_uid for p in maildir_files(maildir))
