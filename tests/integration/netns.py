"""Network namespaces with their own name server, for the tests that need
DNS (test_smtpd_dns.py, test_smtp_client.py): nothing they look up ever
leaves the namespace.

    ns = Namespace(workdir, ["192.0.2.1"], ["2001:db8::1"])
    ns.dns = NameServer(ns, ["--host-record=a.example.test,192.0.2.1",
                             "--local=/example.test/"])
    subprocess.run(ns.argv("python3", "-c", "..."))     # runs inside
    ns.delete()

A Namespace NAME gets /etc/netns/NAME/resolv.conf (nameserver 127.0.0.1)
and hosts, which `ip netns exec` bind-mounts over /etc inside, and its
loopback interface up with the given test addresses.  NamespaceInstance
is an Instance whose master (and so every daemon) runs inside.  Needs
root, ip(8) and dnsmasq.
"""
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys

from conftest import Instance, make_instance, wait_until

BLACKHOLE = "127.0.0.2"  # a name server that reads queries and never answers


def run(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=10)


def wait_for(predicate, what, timeout=10):
    wait_until(predicate, timeout, what)


def stop_process(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def reverse_name(addr):
    return ipaddress.ip_address(addr).reverse_pointer


class Namespace:
    """A network namespace NAME with /etc/netns/NAME/{resolv.conf,hosts}
    and addresses4 / addresses6 on its loopback interface."""

    def __init__(self, workdir, addresses4=(), addresses6=()):
        self.name = f"postino-test-{secrets.token_hex(4)}"
        self.etc = f"/etc/netns/{self.name}"
        self.workdir = workdir
        self.procs = []
        try:
            self._create(addresses4, addresses6)
        except BaseException:
            self.delete()
            raise

    def _create(self, addresses4, addresses6):
        os.makedirs(self.etc)
        with open(f"{self.etc}/resolv.conf", "w") as f:
            f.write("nameserver 127.0.0.1\n")
        with open(f"{self.etc}/hosts", "w") as f:
            f.write("127.0.0.1 localhost\n")
        run("ip", "netns", "add", self.name)
        self.exec("ip", "link", "set", "lo", "up")
        for addr in addresses4:
            self.exec("ip", "addr", "add", f"{addr}/32", "dev", "lo")
        for addr in addresses6:
            self.exec("ip", "-6", "addr", "add", f"{addr}/128", "dev", "lo",
                      "nodad")

    def argv(self, *argv):
        return ["ip", "netns", "exec", self.name, *argv]

    def exec(self, *argv):
        run(*self.argv(*argv))

    def spawn(self, argv, log_path):
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(self.argv(*argv), stdout=log,
                                    stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def delete(self):
        for proc in self.procs:
            stop_process(proc)
        subprocess.run(["ip", "netns", "delete", self.name],
                       capture_output=True, timeout=10)
        shutil.rmtree(self.etc, ignore_errors=True)
        try:
            os.rmdir("/etc/netns")  # only when no other namespace uses it
        except OSError:
            pass


BLACKHOLE_SCRIPT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("listening", flush=True)
while True:
    s.recv(4096)
"""


class NameServer:
    """dnsmasq in the namespace, answering from its command line only
    (records: dnsmasq options such as --host-record=...).  With
    blackhole, a server on BLACKHOLE that never answers is started too,
    for records delegated to it with --server=/zone/127.0.0.2."""

    def __init__(self, ns, records, blackhole=False):
        self.ns = ns
        self.log_path = os.path.join(ns.workdir, "dnsmasq.log")
        self.argv = [
            "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv",
            "--no-hosts", "--no-negcache", "--cache-size=0",
            "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53",
            "--user=root", f"--pid-file={ns.workdir}/dnsmasq.pid",
            "--log-queries", f"--log-facility={self.log_path}", *records]
        if blackhole:
            blackhole_log = os.path.join(ns.workdir, "blackhole.log")
            ns.spawn([sys.executable, "-c", BLACKHOLE_SCRIPT, BLACKHOLE],
                     blackhole_log)
            wait_for(lambda: "listening" in read(blackhole_log),
                     "blackhole name server")
        self.start()

    def start(self):
        starts = self.log().count("started, version")
        self.proc = self.ns.spawn(self.argv, self.log_path + ".out")
        wait_for(lambda: self.log().count("started, version") > starts,
                 "dnsmasq start")

    def stop(self):
        stop_process(self.proc)

    def log(self):
        return read(self.log_path)

    def queries(self):
        return re.findall(r"query\[\w+\] (\S+) from", self.log())


class NamespaceInstance(Instance):
    """An Instance whose master (and so every daemon) runs in ns."""

    ns = None

    def command(self, *args):
        argv = super().command(*args)
        if args and args[0] == "start-fg":
            argv = self.ns.argv(*argv)
        return argv


def make_namespace_instance(ns, user=None):
    """A fresh instance (conftest's make_instance) whose master runs in ns."""
    inst = make_instance(user)
    inst.__class__ = NamespaceInstance
    inst.ns = ns
    return inst
