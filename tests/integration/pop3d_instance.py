"""What the pop3d tests share: an instance with pop3d on two free loopback
ports (POP3 with STLS, and POP3S with implicit TLS), a self-signed
certificate, a password table built by postino-map, virtual Maildirs under
the instance, and a raw POP3 client for sessions no library would send.

    pop = start_pop3d(inst)
    box = pop.maildir("demo")            # the Maildir of demo@example.test
    box.deliver(b"Subject: x\\n\\nbody\\n")
    c = RawPop(pop.port); c.cmd("CAPA")
"""
import os
import pathlib
import re
import socket
import ssl
from dataclasses import dataclass

from conftest import BIN, IS_ROOT, free_port, wait_until
from smtpd_instance import crypt_password_table, make_certificate, write_file

PASSWORD = "correct horse"
USERS = ("demo", "bob")
DOMAIN = "example.test"


def client_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def mailbox_owner():
    """uid and gid the virtual Maildirs belong to: nobody as root (the
    mailbox processes then really switch users), else whoever runs."""
    if IS_ROOT:
        return 65534, 65534
    return os.getuid(), os.getgid()


class Maildir:
    """One virtual user's Maildir, written as a delivery agent does."""

    counter = 0

    def __init__(self, path, uid, gid):
        self.path = pathlib.Path(path)
        self.uid, self.gid = uid, gid
        for sub in ("", "tmp", "new", "cur"):
            d = self.path / sub
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, uid, gid)
            os.chmod(d, 0o700)

    def deliver(self, data, name=None):
        """A message in new/ as UNIQUE,S=size with LF line ends."""
        Maildir.counter += 1
        if name is None:
            name = (f"{1700000000 + Maildir.counter}.M{Maildir.counter}"
                    f"P{os.getpid()}.test,S={len(data)}")
        tmp = self.path / "tmp" / name
        tmp.write_bytes(data)
        os.chown(tmp, self.uid, self.gid)
        os.rename(tmp, self.path / "new" / name)
        return name

    def files(self, sub):
        return sorted(os.listdir(self.path / sub))


@dataclass
class Pop:
    inst: object
    port: int
    tls_port: int
    base: pathlib.Path

    def maildir(self, user):
        uid, gid = mailbox_owner()
        return Maildir(self.base / DOMAIN / user, uid, gid)


def make_password_table(inst, users=USERS, password=PASSWORD):
    """hash:etc/pop3_passwd: USER@DOMAIN with password, for each user."""
    return crypt_password_table(inst, "pop3_passwd",
                                [f"{u}@{DOMAIN}" for u in users], password)


def pop3d_master_cf(port, tls_port, extra=""):
    pop3d = f"{BIN}/pop3d"
    return (f"127.0.0.1:{port} inet n n n - - {pop3d}{extra}\n"
            f"127.0.0.1:{tls_port} inet n n n - - {pop3d}{extra}\n"
            f"  -o pop3d_tls_wrappermode=yes\n"
            f"anvil unix - - n - 1 {BIN}/anvil\n")


def start_pop3d(inst, main_cf="", extra=""):
    """Starts inst with pop3d; demo@ and bob@example.test have Maildirs
    under root/vmail (owned by mailbox_owner()); plaintext logins are
    allowed from nowhere unless main_cf says otherwise."""
    cert, key = make_certificate(inst)
    passwords = make_password_table(inst)
    base = inst.root / "vmail"
    base.mkdir(exist_ok=True)
    os.chmod(base, 0o755)
    vmail = write_file(inst, "vmailbox", "".join(
        f"{u}@{DOMAIN} {DOMAIN}/{u}/\n" for u in USERS))
    uid, gid = mailbox_owner()
    pop = Pop(inst, free_port(), free_port(), base)
    inst.write_main_cf(
        f"pop3d_tls_cert_file = {cert}\n"
        f"pop3d_tls_key_file = {key}\n"
        f"pop3d_password_maps = {passwords}\n"
        f"virtual_mailbox_base = {base}\n"
        f"virtual_mailbox_maps = texthash:{vmail}\n"
        f"virtual_uid_maps = static:{uid}\n"
        f"virtual_gid_maps = static:{gid}\n"
        "pop3d_auth_failure_delay = 0\n"
        + main_cf)
    inst.write_master_cf(pop3d_master_cf(pop.port, pop.tls_port, extra))
    inst.start()
    return pop


class RawPop:
    """A byte-level POP3 client: send exactly these bytes, read lines."""

    def __init__(self, port, timeout=10, greeting=True, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        if tls:
            self.sock = client_tls().wrap_socket(self.sock)
        self.file = self.sock.makefile("rb")
        if greeting:
            line = self.line()
            assert line.startswith("+OK"), line

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        """One reply line without CRLF, or None at EOF."""
        data = self.file.readline()
        if not data:
            return None
        return data.decode(errors="replace").rstrip("\r\n")

    def multi(self):
        """The lines of a multi-line body up to ".", unstuffed."""
        lines = []
        while True:
            data = self.file.readline()
            assert data, "EOF inside a multi-line reply"
            assert data.endswith(b"\r\n"), data
            data = data[:-2]
            if data == b".":
                return lines
            if data.startswith(b"."):
                data = data[1:]
            lines.append(data)

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.line()

    def starttls(self):
        assert self.cmd("STLS").startswith("+OK")
        self.sock = client_tls().wrap_socket(self.sock)
        self.file = self.sock.makefile("rb")

    def login(self, user=f"demo@{DOMAIN}", password=PASSWORD):
        assert self.cmd(f"USER {user}").startswith("+OK")
        return self.cmd(f"PASS {password}")

    def closed(self, timeout=10):
        """True when the server closed the connection."""
        self.sock.settimeout(timeout)
        try:
            return self.file.read() == b""
        except (ConnectionResetError, socket.timeout, ssl.SSLError):
            return False

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


def tls_login(pop, user=f"demo@{DOMAIN}"):
    """A raw session over STLS, logged in; returns (client, +OK line)."""
    c = RawPop(pop.port)
    c.starttls()
    reply = c.login(user)
    return c, reply


def wait_for(predicate, timeout=10):
    wait_until(predicate, timeout)


def uidl_map(lines):
    out = {}
    for line in lines:
        m = re.match(rb"(\d+) (\S+)$", line)
        assert m, line
        out[int(m.group(1))] = m.group(2).decode()
    return out
