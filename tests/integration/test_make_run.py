"""The `make run` demo (tools/run.sh, here with RUN_DIR elsewhere): mail
sent to demo@example.test on 127.0.0.1:2525 arrives in its Maildir at
once; submission (5587, STARTTLS) and submissions (5465) take the demo
login; POP3 (1110 with STLS, 1995 with implicit TLS) lets
demo@example.test fetch the message with the password printed at start."""
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, wait_until

PORTS = (2525, 5587, 5465, 1110, 1995)
TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def client_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture
def make_run():
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                pytest.skip(f"port {port} is in use (a make run instance?)")
    # Under /tmp with mode 0755, so that the mail owner reaches run/.
    top = tempfile.mkdtemp(prefix="postino-make-run-")
    os.chmod(top, 0o755)
    run_dir = os.path.join(top, "run")
    env = dict(os.environ, BUILD=str(BIN.parent), RUN_DIR=run_dir)
    log_path = os.path.join(top, "terminal.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([os.path.join(TOP, "tools", "run.sh")],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def text():
        with open(log_path, errors="replace") as f:
            return f.read()

    try:
        deadline = time.monotonic() + 60
        while "daemon started" not in text():
            assert proc.poll() is None, text()
            assert time.monotonic() < deadline, text()
            time.sleep(0.1)
        password = re.search(r"POP3 login: demo@example.test / (\S+)",
                             text()).group(1)
        yield run_dir, password, text
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(top, ignore_errors=True)


MESSAGE = (b"From: someone@example.org\r\nTo: demo@example.test\r\n"
           b"Subject: make run demo\r\n\r\nIt works.\r\n")


def wait_files(path, count=1, timeout=20, log=None):
    deadline = time.monotonic() + timeout
    while True:
        files = sorted(os.listdir(path)) if os.path.isdir(path) else []
        if len(files) >= count:
            return files
        assert time.monotonic() < deadline, log() if log else path
        time.sleep(0.05)


def test_demo_mail_arrives_and_can_be_fetched_over_pop3(make_run):
    run_dir, password, log = make_run
    with smtplib.SMTP("127.0.0.1", 2525, timeout=10) as s:
        s.starttls(context=client_tls())
        s.ehlo("client.example")
        s.sendmail("someone@example.org", ["demo@example.test"], MESSAGE)
    new = os.path.join(run_dir, "mail", "example.test", "demo", "new")
    [name] = wait_files(new, log=log)
    with open(os.path.join(new, name), "rb") as f:
        assert b"Subject: make run demo" in f.read()
    # The file has its name before the fsync; the log line comes after.
    sent = (r"postino/virtual\[\d+\]: [0-9A-F]+: "
            r"to=<demo@example.test>, relay=virtual, .*"
            r"status=sent \(delivered to maildir\)")
    wait_until(lambda: re.search(sent, log()), 10, "the delivery's log line")

    # Submission with the printed password; the message goes to the demo
    # mailbox as well.
    with smtplib.SMTP("127.0.0.1", 5587, timeout=10) as s:
        s.starttls(context=client_tls())
        s.login("demo", password)
        s.sendmail("demo@example.test", ["demo@example.test"],
                   MESSAGE.replace(b"make run demo", b"submitted"))
    with smtplib.SMTP_SSL("127.0.0.1", 5465, timeout=10,
                          context=client_tls()) as s:
        s.login("demo@example.test", password)
    wait_files(new, count=2, log=log)

    pop = poplib.POP3("127.0.0.1", 1110, timeout=10)
    pop.stls(context=client_tls())
    pop.user("demo@example.test")
    pop.pass_(password)
    count, _ = pop.stat()
    assert count == 2
    bodies = [b"\n".join(pop.retr(i)[1]) for i in (1, 2)]
    assert any(b"Subject: make run demo" in b for b in bodies)
    assert any(b"Subject: submitted" in b for b in bodies)
    pop.quit()

    pop = poplib.POP3_SSL("127.0.0.1", 1995, timeout=10,
                          context=client_tls())
    pop.user("demo@example.test")
    pop.pass_(password)
    assert pop.stat()[0] == 2
    pop.quit()
