"""A Postfix as one host among Postino hosts in a network namespace
(test_mx_hosts.py): its own config_directory, queue_directory,
data_directory and log file under a temporary directory, no chroot, a
virtual domain whose mailboxes are Maildirs, and smtpd on one address.

    d = PostfixPeer(ns, "127.0.0.6", "mx.d.test", "d.test", ["dave"])
    d.start()                  # postfix -c DIR start, inside ns
    d.wait_log(r"status=sent")
    d.stop()                   # postfix -c DIR stop, then every process
                               # of this instance is gone

Needs root and Debian's postfix (/usr/sbin/postfix); PostfixPeer.missing()
says why it cannot run.  Tests skip then: Postfix is a benchmark
dependency, tools/deps.sh does not install it.
"""
import os
import pathlib
import pwd
import re
import shutil
import subprocess
import tempfile
import time

from conftest import kill_processes, pids_with, self_signed_certificate

POSTFIX = "/usr/sbin/postfix"

# Every service is unchrooted (column 5 "n"): the instance's files live
# under its temporary directory, not in a chroot jail.
MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixPeer:
    def __init__(self, ns, addr, hostname, domain, users):
        self.ns, self.addr = ns, addr
        self.hostname, self.domain = hostname, domain
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="postfix-peer-"))
        os.chmod(self.root, 0o755)
        self.etc = self.root / "etc"
        self.queue = self.root / "queue"
        self.data = self.root / "data"
        self.vmail = self.root / "vmail"
        self.log_path = self.root / "maillog"
        self.started = False
        pf = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        for d in (self.etc, self.queue, self.data, self.vmail / domain):
            d.mkdir(parents=True)
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        for d in (self.vmail, self.vmail / domain):
            os.chown(d, nobody.pw_uid, nobody.pw_gid)
        self._certificate()
        mailboxes = ", ".join(f"{u}@{domain}={domain}/{u}/" for u in users)
        (self.etc / "main.cf").write_text(
            "compatibility_level = 3.6\n"
            f"queue_directory = {self.queue}\n"
            f"data_directory = {self.data}\n"
            f"maillog_file = {self.log_path}\n"
            f"maillog_file_prefixes = {self.root}\n"
            f"myhostname = {hostname}\n"
            f"mydomain = {domain}\n"
            "mydestination =\n"
            f"inet_interfaces = {addr}\n"
            "inet_protocols = ipv4\n"
            "mynetworks = 127.0.0.0/8\n"
            "alias_maps =\n"
            "alias_database =\n"
            "local_recipient_maps =\n"
            f"virtual_mailbox_domains = {domain}\n"
            f"virtual_mailbox_maps = inline:{{ {mailboxes} }}\n"
            f"virtual_mailbox_base = {self.vmail}\n"
            f"virtual_uid_maps = static:{nobody.pw_uid}\n"
            f"virtual_gid_maps = static:{nobody.pw_gid}\n"
            f"smtpd_tls_cert_file = {self.etc / 'cert.pem'}\n"
            f"smtpd_tls_key_file = {self.etc / 'key.pem'}\n"
            "smtpd_tls_security_level = may\n"
            "smtpd_tls_received_header = yes\n"
            "smtp_tls_security_level = may\n"
            "smtp_tls_loglevel = 1\n"
            "minimal_backoff_time = 1s\n"
            "maximal_backoff_time = 2s\n"
            "queue_run_delay = 1s\n"
            "biff = no\n")
        (self.etc / "master.cf").write_text(MASTER_CF)

    @staticmethod
    def missing():
        """Why no Postfix peer can run here, or None."""
        if not os.path.exists(POSTFIX):
            return f"{POSTFIX} is not installed (a benchmark dependency)"
        try:
            pwd.getpwnam("postfix")
        except KeyError:
            return "no postfix user"
        return None

    def _certificate(self):
        self_signed_certificate(self.etc / "cert.pem", self.etc / "key.pem",
                                self.hostname)

    def postfix(self, *args, timeout=60):
        """postfix -c DIR ARGS, run inside the namespace."""
        return subprocess.run(self.ns.argv(POSTFIX, "-c", str(self.etc),
                                           *args),
                              capture_output=True, text=True,
                              timeout=timeout)

    def start(self):
        # check makes the queue's directories, with their owners, as
        # set-permissions would; start refuses what check finds fatal.
        self.postfix("check")
        r = self.postfix("start")
        self.started = r.returncode == 0
        assert self.started, f"{r.stdout}{r.stderr}{self.log()}"
        self.wait_log(r"postfix/master\[\d+\]: daemon started", timeout=30)

    def master_pid(self):
        try:
            text = (self.queue / "pid" / "master.pid").read_text()
            return int(text.strip())
        except (OSError, ValueError):
            return None

    def processes(self):
        """PIDs of the processes of this instance: the master and its
        children, all with MAIL_CONFIG=DIR in their environment."""
        return pids_with(f"MAIL_CONFIG={self.etc}", "environ")

    def stop(self):
        """Stops the instance; the PIDs that had to be killed (none when
        postfix stop did its job)."""
        if self.started:
            self.postfix("stop")
            self.started = False
        deadline = time.monotonic() + 15
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        leftover = self.processes()
        kill_processes(leftover)
        return leftover

    def finish(self):
        leftover = self.stop()
        log = self.log()
        shutil.rmtree(self.root, ignore_errors=True)
        assert not leftover, f"postfix processes left behind: {leftover}\n{log}"

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            found = re.findall(pattern, self.log())
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern!r} in "
                                     f"{self.log_path} after {timeout}s:\n"
                                     f"{self.log()}")
            time.sleep(0.05)

    def queue_id(self, message_id, timeout=10):
        """The queue ID cleanup logged for the message with Message-ID
        <message_id>."""
        [qid] = self.wait_log(rf"postfix/cleanup\[\d+\]: (\w+): "
                              rf"message-id=<{re.escape(message_id)}>",
                              timeout)
        return qid

    def mailbox(self, user):
        return self.vmail / self.domain / user
