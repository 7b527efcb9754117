"""The master supervisor and the postino command, with real processes."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import (BIN, IS_ROOT, TEST_BIN, EchoClient, free_port,
                      wait_until)


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def process_gone(pid):
    """True when pid has exited (a zombie not yet reaped counts as gone)."""
    try:
        return proc_status(pid)["State"].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_service_answers_and_killed_child_is_replaced(instance):
    port = free_port()
    instance.write_master_cf(instance.echo_line(port))
    instance.start()
    first = EchoClient(port)
    assert first.ask("hello") == "250 hello"
    # The child runs unprivileged: mail_owner, no capabilities,
    # no_new_privs.
    status = proc_status(first.pid)
    expected_uid = (instance.uid if not IS_ROOT or instance.user
                    else __import__("pwd").getpwnam("postino").pw_uid)
    assert status["Uid"].split()[0] == str(expected_uid)
    assert status["CapEff"] == "0000000000000000"
    assert status["CapPrm"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1"

    os.kill(first.pid, signal.SIGKILL)
    instance.wait_log(rf"pid {first.pid} killed by signal 9")
    second = EchoClient(port)
    assert second.pid != first.pid
    assert second.ask("again") == "250 again"
    first.close()
    second.close()


def test_crashing_service_is_throttled_while_others_answer(plain_instance):
    inst = plain_instance
    good, bad = free_port(), free_port()
    inst.write_master_cf(inst.echo_line(good) +
                         inst.echo_line(bad, args="crash"))
    inst.start()
    # Keep a connection waiting on the crashing service: the master keeps
    # trying to start a child for it.
    waiting = socket.create_connection(("127.0.0.1", bad))
    started = time.monotonic()
    # Meanwhile the healthy service answers, again and again.
    while time.monotonic() - started < 7.5:
        client = EchoClient(good, timeout=2)
        assert client.ask("ping") == "250 ping"
        client.close()
        time.sleep(0.25)
    log = inst.log()
    delays = [int(d) for d in re.findall(
        rf"service 127\.0\.0\.1:{bad}/inet: bad command startup -- "
        r"throttling for (\d+) s", log)]
    assert delays[:3] == [1, 2, 4], log
    # Growing delays: in 7.5 s at most 4 starts (0, 1, 3, 7 s), never a
    # fork loop.
    starts = len(re.findall(r"crashing on purpose", log))
    assert 3 <= starts <= 4, log
    waiting.close()


def test_reload_adds_and_removes_services_in_flight_survive(instance):
    kept, removed, added = free_port(), free_port(), free_port()
    instance.write_master_cf(instance.echo_line(kept) +
                             instance.echo_line(removed))
    instance.start()
    on_kept = EchoClient(kept)
    on_removed = EchoClient(removed)
    assert on_kept.ask("before") == "250 before"

    instance.write_master_cf(instance.echo_line(kept) +
                             instance.echo_line(added))
    result = instance.postino("reload")
    assert result.returncode == 0, result.stderr
    instance.wait_log(r"reload -- configuration")
    assert re.search(rf"removing service 127\.0\.0\.1:{removed}/inet",
                     instance.log())
    assert re.search(rf"adding service 127\.0\.0\.1:{added}/inet",
                     instance.log())

    # The new service answers; the removed one no longer listens.
    new = EchoClient(added)
    assert new.ask("new") == "250 new"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", removed), timeout=2)
    # Connections in flight, on the kept and on the removed service, go on.
    assert on_kept.ask("during") == "250 during"
    assert on_removed.ask("still here") == "250 still here"
    # A new connection to the kept service gets a new child.
    fresh = EchoClient(kept)
    assert fresh.pid != on_kept.pid
    # The old children finish their connection, then exit.
    assert on_kept.ask("quit") == "221 bye"
    assert on_removed.ask("quit") == "221 bye"
    for pid in (on_kept.pid, on_removed.pid):
        wait_until(lambda: process_gone(pid),
                   what=f"retired child {pid} to exit")
    for c in (on_kept, on_removed, new, fresh):
        c.close()


def test_reload_with_bad_config_changes_nothing(plain_instance):
    inst = plain_instance
    port = free_port()
    inst.write_master_cf(inst.echo_line(port))
    inst.start()
    inst.write_master_cf(inst.echo_line(port) +
                         "broken inet n - n - 1\n")
    result = inst.postino("reload")
    assert result.returncode == 1
    assert "master.cf:2:" in result.stderr
    client = EchoClient(port)
    assert client.ask("ok") == "250 ok"
    client.close()


def test_stop_leaves_no_process_behind(instance):
    port = free_port()
    instance.write_master_cf(instance.echo_line(port))
    instance.start()
    clients = [EchoClient(port) for _ in range(3)]
    assert len({c.pid for c in clients}) == 3
    assert instance.postino("status").returncode == 0
    result = instance.postino("stop")
    assert result.returncode == 0, result.stderr
    assert instance.proc.wait(timeout=20) == 0
    assert instance.processes() == []
    status = instance.postino("status")
    assert status.returncode == 1
    assert "not running" in status.stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    for c in clients:
        c.close()


def test_second_master_on_same_queue_is_refused(instance):
    port = free_port()
    instance.write_master_cf(instance.echo_line(port))
    instance.start()
    again = instance.postino("start")
    assert again.returncode == 1
    assert "already running" in again.stderr
    # The master program itself refuses too, even when started directly.
    direct = subprocess.run(
        instance.as_user([str(BIN / "master"), "-c", str(instance.etc),
                          "-d", "-s"]),
        capture_output=True, text=True, timeout=20)
    assert direct.returncode == 1
    assert "already running on this queue" in direct.stderr
    client = EchoClient(port)
    assert client.ask("fine") == "250 fine"
    client.close()


def test_wakeup_triggers_a_unix_service(plain_instance):
    inst = plain_instance
    inst.write_master_cf(f"ticker unix - n n 1 1 {TEST_BIN}/echod trigger\n")
    inst.start()
    inst.wait_log(r"postino/echod\[\d+\]: trigger: W", timeout=6, count=3)
    assert (inst.queue / "private" / "ticker").exists()


def test_max_use_replaces_child(plain_instance):
    inst = plain_instance
    port = free_port()
    inst.write_master_cf(
        f"127.0.0.1:{port} inet n - n - 1 {TEST_BIN}/echod -o max_use=2\n")
    inst.start()
    pids = []
    for _ in range(3):
        c = EchoClient(port)
        pids.append(c.pid)
        assert c.ask("quit") == "221 bye"
        c.close()
    assert pids[0] == pids[1]
    assert pids[2] != pids[0]


def test_daemon_mode_start_status_stop(plain_instance):
    inst = plain_instance
    port = free_port()
    logfile = inst.root / "maillog"
    inst.write_main_cf(f"maillog_file = {logfile}\n")
    inst.write_master_cf(inst.echo_line(port))
    started = inst.postino("start")
    assert started.returncode == 0, started.stderr
    assert "starting the Postino mail system" in started.stderr
    status = inst.postino("status")
    assert status.returncode == 0
    assert re.search(r"is running: PID: \d+", status.stderr)
    client = EchoClient(port)
    assert client.ask("daemon") == "250 daemon"
    client.close()
    stopped = inst.postino("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert inst.processes() == []
    text = logfile.read_text()
    assert re.search(r"postino/master\[\d+\]: daemon started", text)
    assert re.search(r"postino/master\[\d+\]: terminating on signal 15",
                     text)


def test_start_reports_a_busy_port(plain_instance):
    inst = plain_instance
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    inst.write_master_cf(inst.echo_line(port))
    result = inst.postino("start")
    assert result.returncode == 1
    assert f"bind 127.0.0.1:{port}: Address already in use" in result.stderr
    assert inst.postino("status").returncode == 1
    assert inst.processes() == []
    busy.close()


LONG = "x" * 20000
BAD_MAIN_CF = [
    ("bad number", "default_process_limit = many\n", 2,
     "default_process_limit"),
    ("bad unit", "max_idle = 10x\n", 2, "max_idle"),
    ("overlong line", f"myorigin = {LONG}\n", 2, "longer than"),
    ("no equals sign", "just some words\n", 2, ""),
]
BAD_MASTER_CF = [
    ("unknown service type", "foo tcp n - n - 1 echod\n", 1, "tcp"),
    ("bad maxproc", "127.0.0.1:2 inet n - n - lots echod\n", 1, "lots"),
    ("overlong line", f"foo unix - n n - 1 echod {LONG}\n", 1, "longer than"),
    ("too few fields", "foo unix - n\n", 1, ""),
]


@pytest.mark.parametrize("name,text,line,word", BAD_MAIN_CF,
                         ids=[c[0] for c in BAD_MAIN_CF])
def test_bad_main_cf_line_reported_with_file_and_line(plain_instance, name,
                                                      text, line, word):
    inst = plain_instance
    inst.write_main_cf("# a comment first\n" + text)
    # The instance's own settings come first in main.cf: count them.
    line += len(inst.main_cf_text("").splitlines())
    for command in ("check", "start"):
        result = inst.postino(command)
        assert result.returncode == 1, (command, result.stderr)
        assert re.search(rf"main\.cf:{line}: .*{re.escape(word)}",
                         result.stderr), (command, result.stderr)
    assert inst.postino("status").returncode == 1


@pytest.mark.parametrize("name,text,line,word", BAD_MASTER_CF,
                         ids=[c[0] for c in BAD_MASTER_CF])
def test_bad_master_cf_line_reported_with_file_and_line(plain_instance, name,
                                                        text, line, word):
    inst = plain_instance
    inst.write_master_cf("# services\n" + text)
    for command in ("check", "start"):
        result = inst.postino(command)
        assert result.returncode == 1, (command, result.stderr)
        assert re.search(rf"master\.cf:{line + 1}: .*{re.escape(word)}",
                         result.stderr), (command, result.stderr)
    assert inst.postino("status").returncode == 1


def test_check_accepts_a_good_instance_and_reports_missing_command(
        plain_instance):
    inst = plain_instance
    port = free_port()
    inst.write_master_cf(inst.echo_line(port))
    result = inst.postino("check")
    assert result.returncode == 0, result.stderr
    inst.write_master_cf(inst.echo_line(port) +
                         "other unix - n n - 1 no-such-daemon\n")
    result = inst.postino("check")
    assert result.returncode == 1
    assert re.search(r"master\.cf:2: service other: command .*no-such-daemon"
                     r": No such file or directory", result.stderr)


def test_maxproc_limits_concurrent_children(plain_instance):
    inst = plain_instance
    port = free_port()
    inst.write_master_cf(inst.echo_line(port, maxproc="1"))
    inst.start()
    first = EchoClient(port)
    # The second connection is queued by the kernel, but no second child
    # starts: its greeting comes only once the first child is free.
    second = socket.create_connection(("127.0.0.1", port), timeout=10)
    second.settimeout(1.0)
    with pytest.raises(socket.timeout):
        second.recv(100)
    inst.wait_log(rf"service 127\.0\.0\.1:{port}/inet has reached its "
                  r'process limit "1"')
    assert first.ask("quit") == "221 bye"
    second.settimeout(10)
    greeting = second.recv(100).decode()
    assert greeting.startswith(f"200 echod {first.pid} ready")
    second.close()
    first.close()


def test_children_started_on_demand_and_idle_ones_reused(plain_instance):
    """The master starts a child only when none is idle (it reads who is
    busy from the status board), and idle children take the next
    connections without new ones being started."""
    inst = plain_instance
    port = free_port()
    inst.write_master_cf(inst.echo_line(port, maxproc="10"))
    inst.start()
    held = [EchoClient(port) for _ in range(3)]
    first_pids = {c.pid for c in held}
    assert len(first_pids) == 3, "three busy children at once"
    for c in held:
        assert c.ask("quit") == "221 bye"
        c.close()
    # Each child is idle again: one at a time, the next connections go to
    # them, and no fourth process is started.
    for _ in range(6):
        c = EchoClient(port)
        assert c.pid in first_pids
        assert c.ask("quit") == "221 bye"
        c.close()
    # Four at once: the three idle ones and exactly one new child.
    held = [EchoClient(port) for _ in range(4)]
    pids = {c.pid for c in held}
    assert len(pids) == 4
    assert len(pids - first_pids) == 1
    # A busy child killed mid-connection frees its place: the next four
    # clients are served by the three left and one new child.
    victim = held[0]
    os.kill(victim.pid, signal.SIGKILL)
    wait_until(lambda: process_gone(victim.pid), what="killed child")
    for c in held:
        c.close()
    time.sleep(0.3)
    again = [EchoClient(port) for _ in range(4)]
    assert len({c.pid for c in again}) == 4
    assert victim.pid not in {c.pid for c in again}
    for c in again:
        assert c.ask("quit") == "221 bye"
        c.close()
    assert "has reached its process limit" not in inst.log()


def test_max_idle_child_exits(plain_instance):
    inst = plain_instance
    port = free_port()
    inst.write_master_cf(
        f"127.0.0.1:{port} inet n - n - - {TEST_BIN}/echod -o max_idle=1s\n")
    inst.start()
    client = EchoClient(port)
    assert client.ask("quit") == "221 bye"
    client.close()
    pid = client.pid
    wait_until(lambda: process_gone(pid), timeout=5,
               what="idle child to exit")
    # Not a crash: no warning, no throttling.
    assert "throttling" not in inst.log()
    assert f"pid {pid}" not in inst.log()
    again = EchoClient(port)
    assert again.ask("back") == "250 back"
    again.close()


@pytest.mark.skipif(not IS_ROOT, reason="chroot needs root")
def test_chroot_service_runs_in_queue_directory(plain_instance):
    inst = plain_instance
    port = free_port()
    inst.write_master_cf(
        f"127.0.0.1:{port} inet n - y - - {TEST_BIN}/echod\n")
    inst.start()
    client = EchoClient(port)
    assert os.readlink(f"/proc/{client.pid}/root") == str(inst.queue)
    assert client.ask("jailed") == "250 jailed"
    client.close()


def test_check_warns_about_unknown_parameter(plain_instance):
    inst = plain_instance
    inst.write_main_cf("no_such_parameter = 1\n")
    result = inst.postino("check")
    assert result.returncode == 0, result.stderr
    assert re.search(r"main\.cf:\d+: .*no_such_parameter", result.stderr)


def test_check_validates_service_overrides(plain_instance):
    inst = plain_instance
    port = free_port()
    inst.write_master_cf(
        "# services\n"
        f"127.0.0.1:{port} inet n - n - - {TEST_BIN}/echod "
        "-o max_use=often\n")
    result = inst.postino("check")
    assert result.returncode == 1
    assert re.search(r"master\.cf:2: .*max_use", result.stderr), \
        result.stderr


def test_make_run_instance_starts_and_ctrl_c_stops_it(tmp_path):
    """tools/run.sh is what `make run` runs: an instance under RUN_DIR,
    logging to the terminal, stopped by Ctrl-C (SIGINT to the foreground
    process group)."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    run_dir = tmp_path / "run"
    env = dict(os.environ, BUILD=str(BIN.parent), RUN_DIR=str(run_dir))
    log_path = tmp_path / "terminal.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([os.path.join(top, "tools", "run.sh")],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_until(lambda: "daemon started" in log_path.read_text(),
                   timeout=60, what="make run instance to start")
        assert (run_dir / "tls" / "cert.pem").exists()
        main_cf = (run_dir / "etc" / "main.cf").read_text()
        assert f"queue_directory = {run_dir}/queue" in main_cf
        assert "inet_interfaces = loopback-only" in main_cf
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log_path.read_text()
    assert re.search(r"postino/master\[\d+\]: terminating on signal 2", text)
    marker = str(run_dir / "etc").encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
            except OSError:
                continue
            assert marker not in cmdline.split(b"\0"), "process left behind"


def test_check_creates_missing_directories_and_reports_bad_modes(
        plain_instance):
    inst = plain_instance
    result = inst.postino("check")
    assert result.returncode == 0, result.stderr
    for name in ("pid", "private", "public", "maildrop", "incoming",
                 "active", "deferred", "hold", "corrupt"):
        assert f"creating missing directory {inst.queue}/{name}" in \
            result.stderr
    assert oct((inst.queue / "private").stat().st_mode & 0o7777) == "0o700"
    os.chmod(inst.queue / "private", 0o755)
    result = inst.postino("check")
    assert result.returncode == 1
    assert (f"{inst.queue}/private: mode 0755, should be 0700 "
            f"(chmod 0700 {inst.queue}/private)") in result.stderr
    started = inst.postino("start")
    assert started.returncode == 1
    assert inst.postino("status").returncode == 1
