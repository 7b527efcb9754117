"""Mail across several hosts on one machine: each host is a Postino
instance of its own listening on port 25 of its own address inside one
network namespace, whose resolver is a dnsmasq there serving the MX and A
records of the test domains (netns.py).  Nothing leaves the namespace.

    a.test   127.0.0.2  the outgoing server of alice@a.test; its SMTP
                        client binds to it (smtp_bind_address)
    b.test   127.0.0.3  mx.b.test, bob@b.test
    c.test   127.0.0.4  mx1.c.test (primary, preference 10), carol@c.test
             127.0.0.5  mx2.c.test (backup, preference 20: c.test in its
                        relay_domains, knows no users)
    d.test   127.0.0.6  mx.d.test, dave@d.test: a Postfix (postfix_peer.py),
                        when /usr/sbin/postfix is installed

and three domains that are not hosts: null.test publishes a null MX (RFC
7505), loop.test has mx.a.test as its MX, and loop-addr.test has
mx.loop.test, another name of 127.0.0.2.

Needs root, ip(8) and dnsmasq; skipped without them.
"""
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import BIN, IS_ROOT, finish_instance
from smtpd_instance import make_certificate
from delivery_instance import maildir_files, read_message, write_table

A, B, C1, C2, D = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5",
                   "127.0.0.6")
DNS_RECORDS = [
    "--mx-host=a.test,mx.a.test,10", f"--host-record=mx.a.test,{A}",
    "--mx-host=b.test,mx.b.test,10", f"--host-record=mx.b.test,{B}",
    "--mx-host=c.test,mx1.c.test,10", "--mx-host=c.test,mx2.c.test,20",
    f"--host-record=mx1.c.test,{C1}", f"--host-record=mx2.c.test,{C2}",
    "--mx-host=d.test,mx.d.test,10", f"--host-record=mx.d.test,{D}",
    "--dns-rr=null.test,15,000000",          # MX 0 "." (RFC 7505)
    "--mx-host=loop.test,mx.a.test,10",
    "--mx-host=loop-addr.test,mx.loop.test,10",
    f"--address=/mx.loop.test/{A}",          # no second PTR for A
    "--local=/test/",
]

pytestmark = pytest.mark.skipif(
    not (IS_ROOT and shutil.which("ip") and shutil.which("dnsmasq")),
    reason="needs root, ip(8) and dnsmasq")


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    from netns import Namespace, NameServer
    workdir = str(tmp_path_factory.mktemp("mx-hosts"))
    try:
        ns = Namespace(workdir, (A, B, C1, C2, D))
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot make a network namespace: {e}")
    try:
        with open(f"{ns.etc}/resolv.conf", "a") as f:
            f.write("options timeout:1 attempts:1\n")
        ns.dns = NameServer(ns, DNS_RECORDS)
        yield ns
    finally:
        ns.delete()


class Host:
    """One Postino instance in the namespace: smtpd on ADDR:25 and the
    whole delivery path, a virtual domain with Maildirs under vmail/."""

    def __init__(self, ns, addr, hostname, domain, users, extra=""):
        from netns import make_namespace_instance
        self.addr, self.hostname, self.domain = addr, hostname, domain
        self.inst = make_namespace_instance(ns)
        try:
            self._configure(users, extra)
        except BaseException:
            shutil.rmtree(self.inst.root, ignore_errors=True)
            raise

    def _configure(self, users, extra):
        inst, addr, hostname, domain = (self.inst, self.addr, self.hostname,
                                        self.domain)
        import pwd
        pw = pwd.getpwnam("nobody")
        self.vmail = inst.root / "vmail"
        (self.vmail / domain).mkdir(parents=True)
        for d in (self.vmail, self.vmail / domain):
            os.chown(d, pw.pw_uid, pw.pw_gid)
        mailboxes = write_table(inst, "vmailbox", "".join(
            f"{u}@{domain} {domain}/{u}/\n" for u in users) or "# none\n")
        inst.write_main_cf(
            f"myhostname = {hostname}\n"
            f"mydestination =\n"
            f"inet_interfaces = {addr}\n"
            "mynetworks = 127.0.0.0/8\n"
            "alias_maps =\n"
            f"virtual_mailbox_domains = {domain if users else ''}\n"
            f"virtual_mailbox_maps = {mailboxes}\n"
            f"virtual_mailbox_base = {self.vmail}\n"
            f"virtual_uid_maps = static:{pw.pw_uid}\n"
            f"virtual_gid_maps = static:{pw.pw_gid}\n"
            "smtpd_peername_lookup = no\n"
            "smtpd_error_sleep_time = 0\n"
            "smtp_tls_security_level = may\n"
            "minimal_backoff_time = 1s\n"
            "maximal_backoff_time = 2s\n"
            "queue_run_delay = 1s\n" + extra)
        cert, key = make_certificate(inst, hostname)
        with open(inst.etc / "main.cf", "a") as f:
            f.write(f"smtpd_tls_cert_file = {cert}\n"
                    f"smtpd_tls_key_file = {key}\n"
                    "smtpd_tls_security_level = may\n")
        inst.write_master_cf(
            f"{addr}:25 inet n - n - - {BIN}/smtpd\n"
            f"cleanup unix - - n - 0 {BIN}/cleanup\n"
            f"qmgr unix n - n 300 1 {BIN}/qmgr\n"
            f"smtp unix - - n - - {BIN}/smtp\n"
            f"relay unix - - n - - {BIN}/smtp\n"
            f"virtual unix - n n - - {BIN}/virtual\n"
            f"bounce unix - - n - 0 {BIN}/bounce\n"
            f"error unix - - n - - {BIN}/error\n"
            f"retry unix - - n - - {BIN}/error\n"
            f"anvil unix - - n - 1 {BIN}/anvil\n"
            f"showq unix n - n - - {BIN}/showq\n")

    def add_main_cf(self, text):
        with open(self.inst.etc / "main.cf", "a") as f:
            f.write(text)

    def table(self, name, text):
        """etc/NAME as a hash: table, built (again) by postino-map."""
        return write_table(self.inst, name, text)

    def start(self):
        self.inst.start()

    def mailbox(self, user):
        return self.vmail / self.domain / user

    def flush(self):
        assert self.inst.postino("flush").returncode == 0

    def finish(self):
        finish_instance(self.inst)


SUBMIT = """
import smtplib, sys
host, sender, rcpts, subject, notify = sys.argv[1:6]
msg = (f"From: {sender}\\r\\nTo: {rcpts}\\r\\nSubject: {subject}\\r\\n"
       f"Message-ID: <{subject}@client.test>\\r\\n\\r\\nAcross hosts.\\r\\n")
with smtplib.SMTP(host, 25, timeout=30) as s:
    s.ehlo("client.test")
    s.sendmail(sender, rcpts.split(","), msg.encode(), [],
               [f"NOTIFY={notify}"] if notify else [])
print("sent")
"""


def submit(ns, host, sender, rcpt, subject, notify=""):
    """A client inside the namespace hands one message to host, for rcpt
    (an address or a list of them); notify: the DSN NOTIFY= of each."""
    rcpts = rcpt if isinstance(rcpt, str) else ",".join(rcpt)
    r = subprocess.run(ns.argv(sys.executable, "-c", SUBMIT, host.addr,
                               sender, rcpts, subject, notify),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "sent" in r.stdout, r.stderr


def new_mail(host, user, before, timeout=30, others=()):
    """The messages that came to user's Maildir besides the files in
    before (a set of paths, as maildir_files gave them earlier)."""
    deadline = time.monotonic() + timeout
    while True:
        fresh = [p for p in maildir_files(host.mailbox(user))
                 if p not in before]
        if fresh:
            return [read_message(p) for p in fresh]
        if time.monotonic() > deadline:
            logs = "\n".join(h.log() if hasattr(h, "log") else h.inst.log()
                             for h in (host, *others))
            raise AssertionError(f"no new mail for {user}@{host.domain}\n"
                                 f"{logs}")
        time.sleep(0.1)


def wait_mail(host, user, count=1, timeout=30, others=()):
    deadline = time.monotonic() + timeout
    while len(maildir_files(host.mailbox(user))) < count:
        if time.monotonic() > deadline:
            logs = "\n".join(h.inst.log() for h in (host, *others))
            raise AssertionError(f"no mail for {user}@{host.domain}\n{logs}")
        time.sleep(0.1)
    return [read_message(p) for p in maildir_files(host.mailbox(user))]


BEN_BUSY = "ben@b.test 450 4.2.1 Mailbox busy, try again later\n"


@pytest.fixture(scope="module")
def hosts(net):
    made = []
    try:
        # On loopback the kernel would send from the peer's own address;
        # A's smtp_bind_address makes its connections come from A.
        a = Host(net, A, "mx.a.test", "a.test", ["alice"],
                 extra=f"smtp_bind_address = {A}\n")
        made.append(a)
        b = Host(net, B, "mx.b.test", "b.test", ["bob", "ben"])
        made.append(b)
        # ben's mailbox is busy until a test empties the table
        b.access = b.table("access", BEN_BUSY)
        b.add_main_cf(f"smtpd_recipient_restrictions = "
                      f"check_recipient_access {b.access}\n")
        for h in made:
            h.start()
        yield a, b
    finally:
        for h in made:
            h.finish()   # also when it did not start


def test_a_delivers_to_b_through_its_mx_over_tls(net, hosts):
    a, b = hosts
    submit(net, a, "alice@a.test", "bob@b.test", "hello-b")
    [msg] = wait_mail(b, "bob", others=(a,))
    assert msg["Subject"] == "hello-b"
    received = " ".join(msg.get_all("Received"))
    assert "by mx.b.test" in received and "using TLS" in received, received
    assert "by mx.a.test" in received, received
    a.inst.wait_log(r"to=<bob@b.test>, relay=mx\.b\.test\[127\.0\.0\.3\]:25"
                    r", .*status=sent \(250 2\.0\.0")
    assert "b.test" in " ".join(net.dns.queries())
    # A's connection came from its smtp_bind_address.
    [qid] = b.inst.wait_log(r"(\w+): message-id=<hello-b@client\.test>")
    b.inst.wait_log(rf"smtpd\[\d+\]: {qid}: client=[^\s\[]+"
                    r"\[127\.0\.0\.2\]")
    b.inst.wait_log(r"smtpd\[\d+\]: connect from [^\s\[]+\[127\.0\.0\.2\]")


def test_a_refusal_at_b_bounces_to_the_sender_on_a(net, hosts):
    a, b = hosts
    before = set(maildir_files(a.mailbox("alice")))
    submit(net, a, "alice@a.test", "nobody@b.test", "to-nobody")
    [notice] = new_mail(a, "alice", before, others=(b,))
    assert "Undelivered" in notice["Subject"]
    parts = list(notice.iter_parts())
    status = parts[1].get_payload()
    [r] = status[1:]
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.1"
    assert r["Remote-MTA"] == "dns; mx.b.test"
    assert "550 5.1.1" in r["Diagnostic-Code"]


def test_backup_mx_keeps_mail_until_the_primary_is_back(net, hosts):
    a, _ = hosts
    backup = Host(net, C2, "mx2.c.test", "c.test", [],
                  extra="relay_domains = c.test\n")
    primary = Host(net, C1, "mx1.c.test", "c.test", ["carol"])
    backup.start()
    try:
        submit(net, a, "alice@a.test", "carol@c.test", "via-backup")
        # The primary is down: A falls back to the backup MX, which takes
        # the mail for a relay domain without knowing its users, and
        # defers it as long as the primary does not answer.
        backup.inst.wait_log(r"to=<carol@c\.test>, relay=.*"
                             r"status=deferred", timeout=30)
        a.inst.wait_log(r"to=<carol@c\.test>, relay=mx2\.c\.test"
                        r"\[127\.0\.0\.5\]:25, .*status=sent")
        primary.start()
        backup.flush()
        [msg] = wait_mail(primary, "carol", timeout=30,
                          others=(backup, a))
        assert msg["Subject"] == "via-backup"
        received = " ".join(msg.get_all("Received"))
        assert "by mx2.c.test" in received and "by mx1.c.test" in received
    finally:
        backup.finish()
        if primary.inst.proc is not None:
            primary.finish()
        else:
            shutil.rmtree(primary.inst.root, ignore_errors=True)


def queue_listing(host, program="postino-queue"):
    """What postino-queue (the admin's view) or mailq (anybody's, through
    showq) lists for host."""
    option = "-C" if program == "mailq" else "-c"
    r = subprocess.run([str(BIN / program), option, str(host.inst.etc)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def statuses(host, qid, rcpt):
    """The status= of each delivery attempt host logged for rcpt of qid,
    in order."""
    return re.findall(rf"{qid}: to=<{re.escape(rcpt)}>, .*status=(\w+)",
                      host.inst.log())


def test_a_4xx_at_b_is_retried_until_b_takes_the_mail(net, hosts):
    a, b = hosts
    bob_before = set(maildir_files(b.mailbox("bob")))
    submit(net, a, "alice@a.test", ["bob@b.test", "ben@b.test"], "busy-ben")
    busy = (r"450 4\.2\.1 <ben@b\.test>: Recipient address rejected: "
            r"Mailbox busy, try again later")
    [qid] = a.inst.wait_log(
        r"(\w+): to=<ben@b\.test>, relay=mx\.b\.test\[127\.0\.0\.3\]:25, "
        rf".*status=deferred \(host mx\.b\.test\[127\.0\.0\.3\] said: {busy}",
        timeout=30)
    b.inst.wait_log(rf"reject: RCPT from .*{busy}")
    # bob's copy went over the same connection; only ben waits.
    [msg] = new_mail(b, "bob", bob_before, others=(a,))
    assert msg["Subject"] == "busy-ben"
    assert maildir_files(b.mailbox("ben")) == []
    listing = queue_listing(a)
    assert qid in listing and "ben@b.test" in listing, listing
    assert "bob@b.test" not in listing, listing
    assert "Mailbox busy, try again later" in listing, listing
    # The mailbox is free again: A's next try (after its backoff, without
    # being told) delivers.
    b.table("access", "# none\n")
    [msg] = wait_mail(b, "ben", timeout=30, others=(a,))
    assert msg["Subject"] == "busy-ben"
    a.inst.wait_log(rf"{qid}: to=<ben@b\.test>, relay=mx\.b\.test"
                    r"\[127\.0\.0\.3\]:25, .*status=sent \(250 2\.0\.0")
    a.inst.wait_log(rf"{qid}: removed")
    seen = statuses(a, qid, "ben@b.test")
    assert seen[0] == "deferred" and seen[-1] == "sent", seen
    assert seen.count("sent") == 1, seen
    assert statuses(a, qid, "bob@b.test") == ["sent"]
    assert len(maildir_files(b.mailbox("ben"))) == 1
    assert len(set(maildir_files(b.mailbox("bob"))) - bob_before) == 1
    assert qid not in queue_listing(a)


def test_a_null_mx_bounces_at_once(net, hosts):
    a, _ = hosts
    before = set(maildir_files(a.mailbox("alice")))
    submit(net, a, "alice@a.test", "nobody@null.test", "to-null")
    [notice] = new_mail(a, "alice", before)
    assert "Undelivered" in notice["Subject"]
    parts = list(notice.iter_parts())
    assert "nobody@null.test" in parts[0].get_content()
    [r] = parts[1].get_payload()[1:]
    assert r["Final-Recipient"] == "rfc822; nobody@null.test"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.10"
    assert r["Remote-MTA"] is None
    assert "does not accept mail (nullMX)" in r["Diagnostic-Code"]
    [qid] = a.inst.wait_log(r"(\w+): to=<nobody@null\.test>, relay=none, "
                            r".*status=bounced \(Domain null\.test does not "
                            r"accept mail \(nullMX\)\)")
    # No delivery attempt: nothing deferred, no address of null.test
    # looked up, no connection tried.
    assert statuses(a, qid, "nobody@null.test") == ["bounced"]
    queries = re.findall(r"query\[(\w+)\] null\.test from", net.dns.log())
    assert queries and set(queries) == {"MX"}, queries
    assert "null.test[" not in a.inst.log()


@pytest.mark.parametrize("domain", ["loop.test", "loop-addr.test"])
def test_an_mx_that_is_a_itself_is_a_loop_and_defers(net, hosts, domain):
    """loop.test's MX is A's myhostname, loop-addr.test's is another name
    of A's address: A does not send the mail to itself, it keeps it."""
    a, _ = hosts
    rcpt = f"x@{domain}"
    submit(net, a, "alice@a.test", rcpt, f"to-{domain}")
    why = f"mail for {domain} loops back to myself"
    [qid] = a.inst.wait_log(rf"(\w+): to=<{re.escape(rcpt)}>, relay=none, "
                            rf".*dsn=4\.4\.6, status=deferred "
                            rf"\({re.escape(why)}\)")
    try:
        for program in ("postino-queue", "mailq"):
            listing = queue_listing(a, program)
            assert re.search(rf"^{qid} .* alice@a\.test\n"
                             rf"\({re.escape(why)}\)\n +{re.escape(rcpt)}$",
                             listing, re.M), (program, listing)
        # Never tried: no relay, nothing but deferrals.
        relays = re.findall(rf"{qid}: to=<{re.escape(rcpt)}>, relay=([^,]+)",
                            a.inst.log())
        assert set(relays) == {"none"}, relays
        assert set(statuses(a, qid, rcpt)) == {"deferred"}
    finally:
        r = subprocess.run([str(BIN / "postino-queue"), "-c",
                            str(a.inst.etc), "-d", qid],
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert qid not in queue_listing(a)


@pytest.fixture(scope="module")
def postfix_d(net):
    from postfix_peer import PostfixPeer
    why = PostfixPeer.missing()
    if why:
        pytest.skip(why)
    d = PostfixPeer(net, D, "mx.d.test", "d.test", ["dave"])
    try:
        d.start()
        yield d
    finally:
        d.finish()


def assert_tls_hop(msg, subject, sender, receiver, earlier):
    """msg has the subject, its newest Received header names the hop
    from sender to receiver over TLS, and an older one names earlier."""
    assert msg["Subject"] == subject
    received = msg.get_all("Received")
    assert sender in received[0], received
    assert receiver in received[0], received
    assert "using TLS" in received[0], received
    assert earlier in " ".join(received[1:]), received


def test_a_delivers_to_a_postfix_peer(net, hosts, postfix_d):
    a, _ = hosts
    d = postfix_d
    submit(net, a, "alice@a.test", "dave@d.test", "to-postfix")
    [msg] = new_mail(d, "dave", set(), others=(a,))
    assert_tls_hop(msg, "to-postfix", "from mx.a.test",
                   "by mx.d.test (Postfix)", "by mx.a.test")
    a.inst.wait_log(r"to=<dave@d\.test>, relay=mx\.d\.test\[127\.0\.0\.6\]"
                    r":25, .*status=sent \(250 2\.0\.0 Ok: queued as \w+\)")
    d.wait_log(r"postfix/virtual\[\d+\]: \w+: to=<dave@d\.test>, "
               r"relay=virtual, .*status=sent \(delivered to maildir\)")
    # From A's smtp_bind_address, not from 127.0.0.6, the address the
    # kernel would choose on loopback.
    qid = d.queue_id("to-postfix@client.test")
    d.wait_log(rf"postfix/smtpd\[\d+\]: {qid}: client=mx\.a\.test"
               r"\[127\.0\.0\.2\]")
    d.wait_log(r"postfix/smtpd\[\d+\]: connect from mx\.a\.test"
               r"\[127\.0\.0\.2\]")


def test_a_postfix_peer_delivers_to_b(net, hosts, postfix_d):
    _, b = hosts
    d = postfix_d
    before = set(maildir_files(b.mailbox("bob")))
    submit(net, d, "dave@d.test", "bob@b.test", "from-postfix")  # into D
    [msg] = new_mail(b, "bob", before, others=(d,))
    assert_tls_hop(msg, "from-postfix", "from mx.d.test", "by mx.b.test",
                   "by mx.d.test (Postfix)")
    d.wait_log(r"TLS connection established to mx\.b\.test"
               r"\[127\.0\.0\.3\]:25")
    qid = d.queue_id("from-postfix@client.test")
    d.wait_log(rf"postfix/smtp\[\d+\]: {qid}: to=<bob@b\.test>, "
               r"relay=mx\.b\.test\[127\.0\.0\.3\]:25, .*status=sent "
               r"\(250 2\.0\.0")


def test_b_tells_the_postfix_peer_of_a_delivery_it_asked_for(net, hosts,
                                                             postfix_d):
    """D passes on NOTIFY=SUCCESS; B's notice goes back to dave on D."""
    _, b = hosts
    d = postfix_d
    before = set(maildir_files(d.mailbox("dave")))
    submit(net, d, "dave@d.test", "bob@b.test", "dsn-success",
           notify="SUCCESS,FAILURE")
    [notice] = new_mail(d, "dave", before, others=(b,))
    assert notice["Subject"] == "Successful Mail Delivery Report"
    assert notice["From"].addresses[0].addr_spec == "MAILER-DAEMON@mx.b.test"
    parts = list(notice.iter_parts())
    per_message, r = parts[1].get_payload()
    assert per_message["Reporting-MTA"] == "dns; mx.b.test"
    assert r["Final-Recipient"] == "rfc822; bob@b.test"
    assert r["Action"] == "delivered"
    assert r["Status"] == "2.0.0"
    assert "Subject: dsn-success" in parts[2].get_content()
    qid = d.queue_id("dsn-success@client.test")
    d.wait_log(rf"postfix/smtp\[\d+\]: {qid}: to=<bob@b\.test>, .*"
               r"status=sent")
    [notice_qid] = re.findall(r"by mx\.b\.test \(Postino\)\s+id (\w+);",
                              " ".join(notice.get_all("Received")))
    b.inst.wait_log(rf"{notice_qid}: to=<dave@d\.test>, relay=mx\.d\.test"
                    r"\[127\.0\.0\.6\]:25, .*status=sent")
