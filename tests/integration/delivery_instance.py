"""What the end-to-end delivery tests share: an instance with the whole
mail path (smtpd, cleanup, qmgr, local, virtual, bounce, error, retry),
a virtual domain example.test whose mailboxes are Maildirs under
vmail/, and helpers to send mail and wait for it in a Maildir.

    d = start_delivery(inst)
    send(d, "a@example.test", ["demo@example.test"], "Subject: hi\\n\\nx\\n")
    [msg] = wait_maildir(d.mailbox("demo"), 1)      # email.message objects
"""
import email
import email.policy
import os
import pwd
import smtplib
import time
from dataclasses import dataclass, field

from conftest import BIN, free_port

VIRTUAL_USERS = ("demo", "sender", "postmaster", "other")


@dataclass
class Delivery:
    inst: object
    smtp_port: int
    vmail: object          # the virtual_mailbox_base
    vmail_uid: int
    vmail_gid: int
    tables: dict = field(default_factory=dict)

    def mailbox(self, user):
        return self.vmail / "example.test" / user


def delivery_master_cf(port, extra=""):
    return (f"127.0.0.1:{port} inet n - n - - {BIN}/smtpd\n"
            f"cleanup unix - - n - 0 {BIN}/cleanup\n"
            f"qmgr unix n - n 300 1 {BIN}/qmgr\n"
            f"local unix - n n - - {BIN}/local\n"
            f"virtual unix - n n - - {BIN}/virtual\n"
            f"bounce unix - - n - 0 {BIN}/bounce\n"
            f"error unix - - n - - {BIN}/error\n"
            f"retry unix - - n - - {BIN}/error\n"
            f"anvil unix - - n - 1 {BIN}/anvil\n" + extra)


def write_table(inst, name, text):
    """A hash: table built by postino-map from etc/NAME."""
    import subprocess
    path = inst.etc / name
    inst._write(path, text)
    subprocess.run(inst.as_user([str(BIN / "postino-map"), f"hash:{path}"]),
                   check=True, capture_output=True)
    return f"hash:{path}"


def start_delivery(inst, main_cf="", master_extra="", transports=""):
    """Starts the whole mail path; returns a Delivery.  transports: lines
    of transport_maps."""
    if inst.uid == 0:
        pw = pwd.getpwnam("nobody")
        uid, gid = pw.pw_uid, pw.pw_gid
    else:
        uid, gid = inst.uid, inst.gid
    vmail = inst.root / "vmail"
    (vmail / "example.test").mkdir(parents=True)
    for d in (vmail, vmail / "example.test"):
        os.chown(d, uid, gid)
    mailboxes = write_table(inst, "vmailbox", "".join(
        f"{u}@example.test example.test/{u}/\n" for u in VIRTUAL_USERS))
    transport = write_table(inst, "transport", transports or "# none\n")
    port = free_port()
    inst.write_main_cf(
        "myhostname = mx.example.net\n"
        "mydestination = mx.example.net, localhost\n"
        "alias_maps =\n"
        "local_recipient_maps =\n"
        "virtual_mailbox_domains = example.test\n"
        f"virtual_mailbox_maps = {mailboxes}\n"
        f"virtual_mailbox_base = {vmail}\n"
        f"virtual_uid_maps = static:{uid}\n"
        f"virtual_gid_maps = static:{gid}\n"
        "virtual_minimum_uid = 1\n"
        f"transport_maps = {transport}\n"
        "2bounce_notice_recipient = postmaster@example.test\n"
        "smtpd_peername_lookup = no\n"
        "smtpd_error_sleep_time = 0\n"
        "minimal_backoff_time = 1s\n"
        "maximal_backoff_time = 4s\n"
        "queue_run_delay = 1s\n"
        + main_cf)
    inst.write_master_cf(delivery_master_cf(port, master_extra))
    inst.start()
    d = Delivery(inst, port, vmail, uid, gid)
    d.tables = {"vmailbox": mailboxes, "transport": transport}
    return d


def send(d, sender, recipients, content, mail_options=(), rcpt_options=()):
    """One message over SMTP; returns the 250 text (with the queue ID)."""
    if isinstance(content, str):
        content = content.encode()
    content = content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=30) as s:
        s.ehlo("client.example")
        code, text = s.mail(sender, list(mail_options))
        assert code == 250, (code, text)
        for r in recipients:
            code, text = s.rcpt(r, list(rcpt_options))
            assert code == 250, (r, code, text)
        code, text = s.data(content)
        assert code == 250, (code, text)
        return text.decode()


def maildir_files(path):
    new = path / "new"
    if not new.is_dir():
        return []
    return sorted(new.iterdir())


def read_message(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def wait_maildir(path, count, timeout=20, inst=None):
    """The messages in path/new once there are count of them."""
    deadline = time.monotonic() + timeout
    while True:
        files = maildir_files(path)
        if len(files) >= count:
            return [read_message(f) for f in files]
        if time.monotonic() > deadline:
            log = inst.log() if inst is not None else ""
            raise AssertionError(f"{len(files)} of {count} messages in "
                                 f"{path} after {timeout}s\n{log}")
        time.sleep(0.05)


def queue_is_empty(inst):
    names = []
    for q in ("incoming", "active", "deferred"):
        d = inst.queue / q
        if d.is_dir():
            names += [f"{q}/{n}" for n in os.listdir(d)]
    return names == [], names


def wait_queue_empty(inst, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        empty, names = queue_is_empty(inst)
        if empty:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"queue not empty after {timeout}s: "
                                 f"{names}\n{inst.log()}")
        time.sleep(0.05)
