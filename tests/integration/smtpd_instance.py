"""What the smtpd tests share: an instance with smtpd (smtp, submission and
submissions on free loopback ports) and cleanup, a TLS certificate, a
password table built by postino-map, and a raw SMTP client for sessions
that a well-behaved library would never send.

    ports = start_smtpd(inst, "mynetworks = 192.0.2.0/24\\n")
    c = RawSmtp(ports.smtp)
    c.send(b"EHLO client.example\\r\\n"); c.reply()   # (250, [lines])
"""
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass

from conftest import BIN, free_port, self_signed_certificate
from records import QueueFile

PASSWORD = "correct horse"
USERS = ("alice", "bob", "postmaster")


@dataclass
class Ports:
    smtp: int
    submission: int
    submissions: int


def write_file(inst, name, text, mode=0o644):
    path = inst.etc / name
    inst._write(path, text)
    os.chmod(path, mode)
    return path


def make_certificate(inst, name="localhost"):
    """A self-signed EC certificate for name in the instance's etc/; the
    key readable by its owner only (smtpd must open it before the
    privilege drop)."""
    cert, key = inst.etc / "cert.pem", inst.etc / "key.pem"
    self_signed_certificate(cert, key, name)
    if inst.user:
        os.chown(key, inst.uid, inst.gid)
        os.chown(cert, inst.uid, inst.gid)
    return cert, key


def crypt_password_table(inst, name, logins, password):
    """hash:etc/NAME, built with postino-map, giving each login a SHA-512
    crypt hash of password."""
    hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                            input=password, text=True, capture_output=True,
                            check=True).stdout.strip()
    source = write_file(inst, name,
                        "".join(f"{login} {hashed}\n" for login in logins))
    subprocess.run(inst.as_user([str(BIN / "postino-map"),
                                 f"hash:{source}"]),
                   check=True, capture_output=True)
    return f"hash:{source}"


def make_password_table(inst):
    """hash:etc/sasl_passwd with a SHA-512 crypt hash for each user."""
    return crypt_password_table(inst, "sasl_passwd", USERS, PASSWORD)


def smtpd_master_cf(ports, extra_smtp=""):
    smtpd = f"{BIN}/smtpd"
    return (
        f"127.0.0.1:{ports.smtp} inet n - n - - {smtpd}{extra_smtp}\n"
        f"127.0.0.1:{ports.submission} inet n - n - - {smtpd}\n"
        f"  -o smtpd_tls_security_level=encrypt\n"
        f"  -o smtpd_sasl_auth_enable=yes\n"
        f"  -o smtpd_delay_reject=no\n"
        f"  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
        f"127.0.0.1:{ports.submissions} inet n - n - - {smtpd}\n"
        f"  -o smtpd_tls_wrappermode=yes\n"
        f"  -o smtpd_sasl_auth_enable=yes\n"
        f"  -o smtpd_delay_reject=no\n"
        f"  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
        f"cleanup unix - - n - 0 {BIN}/cleanup\n"
        f"anvil unix - - n - 1 {BIN}/anvil\n")


def start_smtpd(inst, main_cf="", extra_smtp=""):
    """Starts inst with smtpd and cleanup; returns the ports.  Local users
    are alice, bob and postmaster at mx.example.net; example.net is a
    virtual mailbox domain with carol; relay.example is a relay domain."""
    cert, key = make_certificate(inst)
    passwords = make_password_table(inst)
    users = write_file(inst, "users", "".join(f"{u} x\n" for u in USERS))
    vmail = write_file(inst, "vmailbox", "carol@example.net carol/\n")
    ports = Ports(free_port(), free_port(), free_port())
    inst.write_main_cf(
        "myhostname = mx.example.net\n"
        "mydestination = mx.example.net, localhost\n"
        f"local_recipient_maps = texthash:{users}\n"
        f"alias_maps =\n"
        f"virtual_mailbox_domains = example.net\n"
        f"virtual_mailbox_maps = texthash:{vmail}\n"
        "relay_domains = relay.example\n"
        f"smtpd_tls_cert_file = {cert}\n"
        f"smtpd_tls_key_file = {key}\n"
        "smtpd_tls_security_level = may\n"
        f"smtpd_sasl_password_maps = {passwords}\n"
        "smtpd_error_sleep_time = 0\n"
        "message_size_limit = 100000\n"
        + main_cf)
    inst.write_master_cf(smtpd_master_cf(ports, extra_smtp))
    inst.start()
    return ports


def queued(inst):
    """Queue files in incoming/, as QueueFile objects by queue ID."""
    d = inst.queue / "incoming"
    return {name: QueueFile(d / name) for name in sorted(os.listdir(d))}


def wait_queued(inst, count=1, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        files = queued(inst)
        if len(files) >= count:
            return files
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(files)} of {count} queue files "
                                 f"after {timeout}s:\n{inst.log()}")
        time.sleep(0.05)


class RawSmtp:
    """A byte-level SMTP client: send exactly these bytes, read replies."""

    def __init__(self, port, timeout=10, greeting=True):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.file = self.sock.makefile("rb")
        if greeting:
            code, lines = self.reply()
            assert code == 220, lines

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        """(code, [text lines]) of one reply, or (None, []) at EOF."""
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                return None, lines
            text = line.decode(errors="replace").rstrip("\r\n")
            m = re.match(r"(\d{3})([ -])(.*)", text)
            assert m, f"bad reply line {text!r}"
            lines.append(m.group(3))
            if m.group(2) == " ":
                return int(m.group(1)), lines

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.reply()

    def closed(self):
        """True when the server closed the connection."""
        try:
            return self.file.read() == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass
