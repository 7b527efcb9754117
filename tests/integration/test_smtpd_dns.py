"""smtpd's client name lookup against a real name server: the test makes
its own network namespace with a resolv.conf that points at a dnsmasq
inside it, gives the namespace's loopback interface test addresses
(192.0.2.1 for the server, the others below for clients), and runs a
Postino instance and the SMTP clients inside it.  Nothing leaves the
namespace.

    192.0.2.10  PTR client10.example.test, A 192.0.2.10     confirmed name
    192.0.2.11  PTR liar.example.test, A 192.0.2.99         not confirmed
    192.0.2.12  no PTR (NXDOMAIN)                           no name
    192.0.2.13  its reverse name is delegated to a server that never
                answers                                     timeout
    192.0.2.14  PTR host.silent.test, whose zone is delegated to that
                server                                      forward timeout
    198.51.100.10  nobody answers for it (REFUSED)          no name
    2001:db8::10   PTR client6.example.test, AAAA 2001:db8::10  confirmed
    2001:db8::11   PTR liar.example.test (an IPv4 name)     not confirmed

Needs root, `ip netns` and dnsmasq; skipped without them.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import (BIN, IS_ROOT, finish_instance, instance_modes,
                      instance_user)
from netns import (BLACKHOLE, Namespace, NameServer, make_namespace_instance,
                   reverse_name)

SERVER = "192.0.2.1"
CONFIRMED, LIAR, NO_PTR, SILENT = ("192.0.2.10", "192.0.2.11", "192.0.2.12",
                                   "192.0.2.13")
FORWARD_SILENT, REFUSED = "192.0.2.14", "198.51.100.10"
CLIENTS = (CONFIRMED, LIAR, NO_PTR, SILENT, FORWARD_SILENT, REFUSED)
SERVER6, CONFIRMED6, LIAR6 = "2001:db8::1", "2001:db8::10", "2001:db8::11"
CLIENTS6 = (CONFIRMED6, LIAR6)
PORT, LOOPBACK_PORT, NO_LOOKUP_PORT, CHROOT_PORT = 2525, 2526, 2527, 2528
REVERSE_PORT, CONFIRM_PORT = 2529, 2530  # reject_unknown_*client_hostname
PORT6 = 2531
MESSAGE = "Subject: dns\r\nFrom: <a@example.org>\r\n\r\nbody\r\n"

pytestmark = [
    pytest.mark.skipif(not IS_ROOT, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="no ip(8)"),
    pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="no dnsmasq"),
]


# ---- the namespace, its name server and its clients ----------------------

RECORDS = [
    f"--host-record=client10.example.test,{CONFIRMED}",
    "--ptr-record=11.2.0.192.in-addr.arpa,liar.example.test",
    "--host-record=liar.example.test,192.0.2.99",
    # Everything else below these is NXDOMAIN, never forwarded.
    "--local=/example.test/",
    "--local=/2.0.192.in-addr.arpa/",
    # ... except what the silent server is asked for.
    f"--server=/13.2.0.192.in-addr.arpa/{BLACKHOLE}",
    "--ptr-record=14.2.0.192.in-addr.arpa,host.silent.test",
    f"--server=/silent.test/{BLACKHOLE}",
    f"--host-record=client6.example.test,{CONFIRMED6}",
    f"--ptr-record={reverse_name(LIAR6)},liar.example.test",
    "--local=/8.b.d.0.1.0.0.2.ip6.arpa/",  # 2001:db8::/32
]


CLIENT_SCRIPT = """
import json, smtplib, sys, time
source, server, port, message = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    sys.argv[4]
start = time.monotonic()
with smtplib.SMTP(server, port, "helo.example", timeout=30,
                  source_address=(source, 0)) as s:
    greeted = time.monotonic() - start
    ehlo = s.ehlo("helo.example")[0]
    refused = s.sendmail("a@example.org", ["alice@mx.example.net"], message)
print(json.dumps({"greeted": greeted, "ehlo": ehlo,
                  "refused": list(refused)}))
"""


def smtp_from(ns, source, port=PORT, server=SERVER):
    """One SMTP session from source inside the namespace: greeting time,
    EHLO code and refused recipients, as the client saw them."""
    out = subprocess.run(ns.argv(sys.executable, "-c", CLIENT_SCRIPT, source,
                                 server, str(port), MESSAGE),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


RCPT_SCRIPT = """
import json, smtplib, sys
source, server, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
with smtplib.SMTP(server, port, "helo.example", timeout=30,
                  source_address=(source, 0)) as s:
    s.ehlo("helo.example")
    s.mail("a@example.org")
    code, text = s.rcpt("alice@mx.example.net")
print(json.dumps([code, text.decode()]))
"""


def rcpt_from(ns, source, port):
    """The reply to RCPT TO:<alice@mx.example.net> from source."""
    out = subprocess.run(ns.argv(sys.executable, "-c", RCPT_SCRIPT, source,
                                 SERVER, str(port)),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    code, text = json.loads(out.stdout)
    return code, text


# ---- the instance inside the namespace -----------------------------------

def start_instance(inst):
    users = inst.etc / "users"
    inst._write(users, "alice x\n")
    inst.write_main_cf(
        "myhostname = mx.example.net\n"
        "mydestination = mx.example.net\n"
        f"local_recipient_maps = texthash:{users}\n"
        "alias_maps =\n"
        "mynetworks = 127.0.0.0/8 [::1]/128\n"  # the clients are outside
        "inet_protocols = all\n"
        "smtpd_error_sleep_time = 0\n")
    smtpd = f"{BIN}/smtpd"
    inst.write_master_cf(
        f"{SERVER}:{PORT} inet n - n - - {smtpd}\n"
        f"127.0.0.1:{LOOPBACK_PORT} inet n - n - - {smtpd}\n"
        f"{SERVER}:{NO_LOOKUP_PORT} inet n - n - - {smtpd}\n"
        "  -o smtpd_peername_lookup=no\n"
        f"{SERVER}:{CHROOT_PORT} inet n - y - - {smtpd}\n"
        f"[{SERVER6}]:{PORT6} inet n - n - - {smtpd}\n"
        f"{SERVER}:{REVERSE_PORT} inet n - n - - {smtpd}\n"
        "  -o smtpd_client_restrictions="
        "reject_unknown_reverse_client_hostname\n"
        "  -o unknown_client_reject_code=550\n"
        f"{SERVER}:{CONFIRM_PORT} inet n - n - - {smtpd}\n"
        "  -o smtpd_client_restrictions=reject_unknown_client_hostname\n"
        "  -o unknown_client_reject_code=550\n"
        f"cleanup unix - - n - 0 {BIN}/cleanup\n"
        f"anvil unix - - n - 1 {BIN}/anvil\n")
    inst.start()


@pytest.fixture(scope="module")
def ns(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("netns"))
    try:
        namespace = Namespace(workdir, (SERVER, *CLIENTS),
                              (SERVER6, *CLIENTS6))
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot make a network namespace: {e}")
    try:
        namespace.dns = NameServer(namespace, RECORDS, blackhole=True)
        yield namespace
    finally:
        namespace.delete()


@pytest.fixture(scope="module", params=instance_modes())
def mta(request, ns):
    inst = make_namespace_instance(ns, instance_user(request.param))
    try:
        start_instance(inst)
        yield inst
    finally:
        finish_instance(inst)


def queue_files(inst):
    return set(os.listdir(inst.queue / "incoming"))


def received_from(inst, source, old_files):
    """The Received: field of the message from source that is not among
    old_files."""
    d = inst.queue / "incoming"
    literal = ("IPv6:" if ":" in source else "") + source
    pattern = re.compile(r"Received: from helo\.example "
                         rf"\([^)]*\[{re.escape(literal)}\]\)")
    deadline = time.monotonic() + 10
    while True:
        for name in queue_files(inst) - old_files:
            m = pattern.search((d / name).read_bytes().decode("latin-1"))
            if m:
                return m.group(0)
        if time.monotonic() > deadline:
            raise AssertionError(f"no queued message from {source}")
        time.sleep(0.05)


def session_seen_as(mta, ns, source, port=PORT, server=SERVER):
    """Runs one session from source; returns what the client saw, the name
    in smtpd's "connect from" line and the Received: field of the
    message."""
    connect = rf"smtpd\[\d+\]: connect from (\S+)\[{re.escape(source)}\]"
    seen = len(re.findall(connect, mta.log()))
    old_files = queue_files(mta)
    result = smtp_from(ns, source, port, server)
    assert result["ehlo"] == 250 and result["refused"] == [], result
    names = mta.wait_log(connect, count=seen + 1)
    return result, names[seen], received_from(mta, source, old_files)


# ---- the cases ------------------------------------------------------------

def test_confirmed_reverse_name_is_used(mta, ns):
    result, name, received = session_seen_as(mta, ns, CONFIRMED)
    assert name == "client10.example.test"
    assert f"(client10.example.test [{CONFIRMED}])" in received
    mta.wait_log(rf"disconnect from client10\.example\.test\[{CONFIRMED}\]")
    assert "10.2.0.192.in-addr.arpa" in ns.dns.queries()
    assert "client10.example.test" in ns.dns.queries()


def test_reverse_name_that_does_not_resolve_back_is_unknown(mta, ns):
    result, name, received = session_seen_as(mta, ns, LIAR)
    assert name == "unknown"
    assert f"(unknown [{LIAR}])" in received
    mta.wait_log(r"hostname liar\.example\.test does not resolve to address "
                 rf"{LIAR}")
    assert "liar.example.test" in ns.dns.queries()


def test_chrooted_smtpd_finds_the_name(mta, ns):
    """smtpd chrooted to the queue directory (as root) finds the name too;
    there is no resolv.conf in the chroot."""
    result, name, received = session_seen_as(mta, ns, CONFIRMED, CHROOT_PORT)
    assert name == "client10.example.test"
    assert f"(client10.example.test [{CONFIRMED}])" in received
    assert not (mta.queue / "etc" / "resolv.conf").exists()
    if mta.user is None:
        pid = re.findall(rf"smtpd\[(\d+)\]: connect from \S+\[{CONFIRMED}\]",
                         mta.log())[-1]
        assert os.readlink(f"/proc/{pid}/root") == str(mta.queue)


def test_ipv6_client_with_confirmed_name(mta, ns):
    result, name, received = session_seen_as(mta, ns, CONFIRMED6, PORT6,
                                             SERVER6)
    assert name == "client6.example.test"
    assert "(client6.example.test [" in received
    assert reverse_name(CONFIRMED6) in ns.dns.queries()


def test_ipv6_client_whose_name_has_only_an_ipv4_address(mta, ns):
    result, name, received = session_seen_as(mta, ns, LIAR6, PORT6, SERVER6)
    assert name == "unknown"
    assert "(unknown [" in received
    mta.wait_log(r"hostname liar\.example\.test does not resolve to address "
                 rf"{re.escape(LIAR6)}")


def test_address_without_reverse_name_is_unknown(mta, ns):
    result, name, received = session_seen_as(mta, ns, NO_PTR)
    assert name == "unknown"
    assert f"(unknown [{NO_PTR}])" in received
    assert "12.2.0.192.in-addr.arpa" in ns.dns.queries()


def test_silent_name_server_gives_unknown_in_bounded_time(mta, ns):
    result, name, received = session_seen_as(mta, ns, SILENT)
    assert name == "unknown"
    assert f"(unknown [{SILENT}])" in received
    assert "13.2.0.192.in-addr.arpa" in ns.dns.queries()
    assert result["greeted"] < 5, result


def test_silent_forward_lookup_gives_unknown_in_bounded_time(mta, ns):
    result, name, received = session_seen_as(mta, ns, FORWARD_SILENT)
    assert name == "unknown"
    assert f"(unknown [{FORWARD_SILENT}])" in received
    mta.wait_log(r"hostname host\.silent\.test does not resolve to address "
                 rf"{FORWARD_SILENT}")
    assert "host.silent.test" in ns.dns.queries()
    assert result["greeted"] < 5, result


def test_refused_reverse_lookup_is_unknown(mta, ns):
    result, name, received = session_seen_as(mta, ns, REFUSED)
    assert name == "unknown"
    assert f"(unknown [{REFUSED}])" in received
    assert "10.100.51.198.in-addr.arpa" in ns.dns.queries()
    assert result["greeted"] < 1, result


def test_loopback_client_is_localhost_without_a_query(mta, ns):
    before = len(ns.dns.queries())
    result, name, received = session_seen_as(mta, ns, "127.0.0.1",
                                             LOOPBACK_PORT, "127.0.0.1")
    assert name == "localhost"
    assert "(localhost [127.0.0.1])" in received
    mta.wait_log(r"disconnect from localhost\[127\.0\.0\.1\]")
    assert ns.dns.queries()[before:] == []


def test_lookup_off_gives_unknown_without_a_query(mta, ns):
    before = len(ns.dns.queries())
    result = smtp_from(ns, CONFIRMED, NO_LOOKUP_PORT)
    assert result["ehlo"] == 250 and result["refused"] == [], result
    mta.wait_log(rf"disconnect from unknown\[{re.escape(CONFIRMED)}\]")
    assert ns.dns.queries()[before:] == []


def test_stopped_name_server_gives_unknown_at_once(mta, ns):
    ns.dns.stop()
    try:
        result, name, received = session_seen_as(mta, ns, CONFIRMED)
    finally:
        ns.dns.start()
    assert name == "unknown"
    assert f"(unknown [{CONFIRMED}])" in received
    assert result["greeted"] < 1, result


REVERSE_REJECTS = "Client host rejected: cannot find your reverse hostname"
NAME_REJECTS = "Client host rejected: cannot find your hostname"


@pytest.mark.parametrize("port, source, code, text", [
    # A PTR name is enough for the reverse check, confirmed or not.
    (REVERSE_PORT, CONFIRMED, 250, None),
    (REVERSE_PORT, LIAR, 250, None),
    (REVERSE_PORT, NO_PTR, 550, f"5.7.25 {REVERSE_REJECTS}, [{NO_PTR}]"),
    (REVERSE_PORT, SILENT, 450, f"4.7.25 {REVERSE_REJECTS}, [{SILENT}]"),
    # The name must also resolve back to the address.
    (CONFIRM_PORT, CONFIRMED, 250, None),
    (CONFIRM_PORT, LIAR, 550, f"5.7.25 {NAME_REJECTS}, [{LIAR}]"),
    (CONFIRM_PORT, NO_PTR, 550, f"5.7.25 {NAME_REJECTS}, [{NO_PTR}]"),
    (CONFIRM_PORT, FORWARD_SILENT, 450,
     f"4.7.25 {NAME_REJECTS}, [{FORWARD_SILENT}]"),
])
def test_reject_unknown_client_hostname(mta, ns, port, source, code, text):
    """A missing or forged name gets unknown_client_reject_code (550
    here); a lookup that failed for now always 450."""
    reply = rcpt_from(ns, source, port)
    assert reply[0] == code, reply
    if text is None:
        return
    assert reply[1] == text
    mta.wait_log(rf"NOQUEUE: reject: RCPT from unknown\[{re.escape(source)}\]:"
                 rf" {code} {re.escape(text)}; from=<a@example\.org> "
                 r"to=<alice@mx\.example\.net>")


def test_only_client_names_were_looked_up(mta, ns):
    """Nothing else in the instance (master, cleanup, the loopback
    sessions) asked the name server anything."""
    reverse = {reverse_name(a) for a in CLIENTS + CLIENTS6}
    forward = {"client10.example.test", "liar.example.test",
               "host.silent.test", "client6.example.test"}
    assert set(ns.dns.queries()) <= reverse | forward, ns.dns.queries()
