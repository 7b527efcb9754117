"""Shared fixtures for the integration tests: a temporary Postino instance.

An Instance is a directory with etc/ (main.cf, master.cf), queue/ and a log
file; it runs the real programs from the build directory (POSTINO_BUILD,
set by `make test`; build/gcc at the top of the tree without it).  When
the tests run as root, the instance fixture runs each test twice: once as
root (with real privilege separation: children as the postino user) and
once as the ordinary user "nobody".
"""
import os
import pathlib
import pwd
import grp
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

# Without POSTINO_BUILD: the gcc build at the top of the source tree,
# wherever pytest runs from (tests/integration as well as the top).
TOP = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("POSTINO_BUILD",
                                    TOP / "build" / "gcc")).resolve()
BIN = BUILD / "bin"
TEST_BIN = BUILD / "test-bin"
IS_ROOT = os.geteuid() == 0
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:")


_PORTS_GIVEN = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now and that
    no earlier call in this test run returned: the kernel may hand out
    the same ephemeral port twice in a row, and two services of one
    instance on one port is a configuration error."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def wait_until(predicate, timeout=10, what="condition"):
    """Polls predicate until it is true; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def readable_by_nobody(path):
    """True when every directory up to path lets "other" users through."""
    p = pathlib.Path(path)
    for part in [p] + list(p.parents):
        if not os.stat(part).st_mode & 0o001:
            return False
    return True



def self_signed_certificate(cert, key, name="localhost"):
    """A self-signed EC certificate for name in file cert, its key in file
    key, readable by its owner only."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", f"/CN={name}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o600)


def pids_with(word, what):
    """PIDs of the processes whose /proc/PID/WHAT (cmdline or environ, a
    list of NUL-separated strings) holds the string word."""
    marker = word.encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/{what}", "rb") as f:
                items = f.read().split(b"\0")
        except OSError:
            continue
        if marker in items:
            pids.append(int(entry))
    return pids

class Instance:
    def __init__(self, root, user=None):
        self.root = pathlib.Path(root)
        self.etc = self.root / "etc"
        self.queue = self.root / "queue"
        self.log_path = self.root / "master.log"
        self.user = user  # None: whoever runs the tests
        self.proc = None
        for d in (self.etc, self.queue):
            d.mkdir(parents=True, exist_ok=True)
        if user:
            pw = pwd.getpwnam(user)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
        self.owner_name = pwd.getpwuid(self.uid).pw_name
        self.group_name = grp.getgrgid(self.gid).gr_name
        self.write_main_cf("")
        self.write_master_cf("")

    # -- configuration ---------------------------------------------------
    def main_cf_text(self, extra):
        as_root = self.uid == 0
        return (
            f"queue_directory = {self.queue}\n"
            f"daemon_directory = {BIN}\n"
            f"command_directory = {BIN}\n"
            f"data_directory = {self.root}/data\n"
            f"mail_owner = {'postino' if as_root else self.owner_name}\n"
            f"setgid_group = {'postdrop' if as_root else self.group_name}\n"
            f"inet_interfaces = loopback-only\n"
            f"inet_protocols = ipv4\n"
            f"{extra}")

    def write_main_cf(self, extra):
        self._write(self.etc / "main.cf", self.main_cf_text(extra))

    def write_master_cf(self, text):
        self._write(self.etc / "master.cf", text)

    def _write(self, path, text):
        path.write_text(text)
        if self.user:
            os.chown(path, self.uid, self.gid)

    def echo_line(self, port, maxproc="-", args="", name=None):
        """A master.cf line for the echo test service on 127.0.0.1:port."""
        service = name or f"127.0.0.1:{port}"
        return (f"{service} inet n - n - {maxproc} {TEST_BIN}/echod"
                f"{' ' + args if args else ''}\n")

    def cleanup_line(self, maxproc="0", args=""):
        """A master.cf line for the cleanup service on private/cleanup
        (tests/integration/records.py speaks its protocol)."""
        return (f"cleanup unix - - n - {maxproc} {BIN}/cleanup"
                f"{' ' + args if args else ''}\n")

    # -- running programs ------------------------------------------------
    def command(self, *args):
        return self.as_user([str(BIN / "postino"), "-c", str(self.etc),
                             *args])

    def as_user(self, argv):
        """argv, run as the instance's user."""
        if self.user:
            argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                    "--clear-groups", *argv]
        return argv

    def postino(self, *args, timeout=60):
        return subprocess.run(self.command(*args), capture_output=True,
                              text=True, timeout=timeout)

    def start(self, wait=True):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command("start-fg"),
                                     stdout=self.log_file,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_log(r"daemon started", timeout=20)
        return self.proc

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log_file.close()

    # -- observing -------------------------------------------------------
    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10, count=1):
        deadline = time.monotonic() + timeout
        while True:
            found = re.findall(pattern, self.log())
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"log has {len(found)} of {count} lines matching "
                    f"{pattern!r} after {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def processes(self):
        """PIDs of every process whose command line names this instance."""
        return pids_with(str(self.etc), "cmdline")

    def pids_of(self, program):
        """PIDs of this instance's processes that run program (the file
        name of the command)."""
        pids = []
        for pid in self.processes():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv0 = f.read().split(b"\0")[0]
            except OSError:
                continue
            if os.path.basename(argv0) == program.encode():
                pids.append(pid)
        return pids


class EchoClient:
    """A line client for the echo test service."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.readline()
        m = re.match(r"200 echod (\d+) ready", self.greeting)
        assert m, f"unexpected greeting {self.greeting!r}"
        self.pid = int(m.group(1))

    def readline(self):
        line = self.file.readline()
        if not line:
            raise EOFError("connection closed")
        return line.decode().rstrip("\r\n")

    def ask(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.readline()

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


def make_instance(user):
    root = tempfile.mkdtemp(prefix="postino-test-")
    os.chmod(root, 0o755)
    inst = Instance(root, user)
    if user:
        for dirpath, dirnames, filenames in os.walk(root):
            os.chown(dirpath, inst.uid, inst.gid)
            for f in filenames:
                os.chown(os.path.join(dirpath, f), inst.uid, inst.gid)
    return inst


def kill_processes(pids):
    """SIGKILL to each of pids (ours, found left behind); gone ones are
    skipped."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def finish_instance(inst):
    inst.stop()
    leftover = inst.processes()
    kill_processes(leftover)
    log = inst.log()
    shutil.rmtree(inst.root, ignore_errors=True)
    assert not leftover, f"processes left behind: {leftover}\n{log}"
    bad = [m for m in SANITIZER_MARKERS if m in log]
    assert not bad, f"sanitizer reports in the log:\n{log}"


def instance_modes():
    if not IS_ROOT:
        return ["user"]
    return ["root", "nobody"]


def instance_user(mode):
    """The user an instance of mode (one of instance_modes()) runs as: None
    for whoever runs the tests; skips the test when that user cannot reach
    the build."""
    user = None if mode in ("root", "user") else mode
    if user and not readable_by_nobody(BUILD):
        pytest.skip(f"{BUILD} is not reachable by user {user}")
    return user


@pytest.fixture(params=instance_modes())
def instance(request):
    """A fresh instance, as root and as an ordinary user where possible."""
    inst = make_instance(instance_user(request.param))
    yield inst
    finish_instance(inst)


@pytest.fixture
def plain_instance():
    """A fresh instance run by whoever runs the tests."""
    inst = make_instance(None)
    yield inst
    finish_instance(inst)
