"""The local delivery agent: a real instance with cleanup and local, driven
as qmgr will drive it (records.deliver): a message goes in through cleanup,
the test moves it from incoming/ to active/, asks local to deliver it, and
looks at the results, the mailboxes and the log.

As root the tests make real Unix users ptest1, ptest2 (useradd, if missing;
their homes moved into the test's directory with usermod; never removed).
Run as nobody, local can act only as nobody: deliveries to other users are
deferred, and the tests that need them are skipped.
"""
import os
import pwd
import re
import subprocess

import pytest

from conftest import BIN
import socket
import time

from records import (QueueFile, deliver, delivery_request, read_record,
                     read_results, send_message)

SENDER = "sender@example.org"
MESSAGE = (b"From: sender@example.org\nTo: someone@localhost\n"
           b"Subject: test\n\nFirst line\nFrom here on, quoted in mbox\n"
           b">From already quoted\nlast line\n")


# -- set-up ------------------------------------------------------------------

def as_root(inst):
    return inst.user is None and os.geteuid() == 0


def need_root(inst):
    if not as_root(inst):
        pytest.skip("local runs as nobody: it can deliver only to nobody, "
                    "not to the test users")


def ensure_user(name, home):
    """A real Unix user for the test, its home set to home (created)."""
    try:
        pwd.getpwnam(name)
        subprocess.run(["usermod", "-d", str(home), name], check=True,
                       capture_output=True)
    except KeyError:
        subprocess.run(["useradd", "-M", "-d", str(home), "-s",
                        "/usr/sbin/nologin", name], check=True,
                       capture_output=True)
    pw = pwd.getpwnam(name)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    os.chmod(home, 0o755)
    return pw


def own_user(inst):
    """The user local can deliver to: ptest1 as root, else the instance's
    user (nobody)."""
    if as_root(inst):
        return ensure_user("ptest1", inst.root / "home" / "ptest1").pw_name
    return inst.owner_name


def start(inst, main_cf="", aliases="postmaster: root\n", local_args=""):
    spool = inst.root / "spool"
    spool.mkdir(exist_ok=True)
    os.chmod(spool, 0o1777)
    outdir = inst.root / "out"
    outdir.mkdir(exist_ok=True)
    os.chmod(outdir, 0o1777)
    write_aliases(inst, aliases)
    inst.write_main_cf(
        "myhostname = localhost\n"
        f"alias_maps = hash:{inst.etc}/aliases\n"
        f"mail_spool_directory = {spool}\n" + main_cf)
    inst.write_master_cf(inst.cleanup_line() +
                         f"local unix - n n - - {BIN}/local{local_args}\n")
    inst.start()


def write_aliases(inst, text):
    path = inst.etc / "aliases"
    inst._write(path, text)
    subprocess.run(inst.as_user([str(BIN / "postino-map"), "-a", str(path)]),
                   check=True, capture_output=True)


def submit(inst, recipients, content=MESSAGE, sender=SENDER):
    """A message through cleanup, moved to active/ as qmgr would."""
    _, reply = send_message(inst.queue / "private" / "cleanup", sender,
                            recipients, content)
    assert reply["status"] == "ok", reply
    qid = reply["queue_id"]
    os.rename(inst.queue / "incoming" / qid, inst.queue / "active" / qid)
    return qid


def send(inst, recipient, content=MESSAGE, sender=SENDER, **rcpt):
    """Submits and delivers to one recipient; the result dict."""
    qid = submit(inst, [recipient], content, sender)
    target = dict(address=recipient, **rcpt) if rcpt else recipient
    results = deliver(inst.queue / "private" / "local", inst.queue, qid,
                      [target])
    assert len(results) == 1 and results[0] is not None
    return qid, results[0]


def incoming(inst):
    return sorted(os.listdir(inst.queue / "incoming"))


def read(path):
    with open(path, "rb") as f:
        return f.read()


# -- mailboxes ---------------------------------------------------------------

def test_mbox_delivery_appends_with_from_line_and_quoting(instance):
    start(instance)
    user = own_user(instance)
    qid, r = send(instance, f"{user}@localhost")
    assert r["status"] == "sent", r
    assert r["dsn"] == "2.0.0" and r["text"] == "delivered to mailbox"
    assert r["action"] == "delivered" and r["relay"] == "local"
    _, r2 = send(instance, f"{user}@localhost", sender="")
    assert r2["status"] == "sent", r2
    box = instance.root / "spool" / user
    st = os.stat(box)
    assert st.st_uid == pwd.getpwnam(user).pw_uid
    assert st.st_mode & 0o777 == 0o600
    text = read(box).decode()
    messages = re.split(r"(?m)^(?=From \S+  \w{3} \w{3} [ \d]\d )", text)
    messages = [m for m in messages if m]
    assert len(messages) == 2, text
    first = messages[0]
    assert first.startswith(f"From {SENDER}  ")
    assert f"\nReturn-Path: <{SENDER}>\nDelivered-To: {user}@localhost\n" \
        in first
    assert "\n>From here on, quoted in mbox\n>>From already quoted\n" \
        "last line\n\n" in first
    assert first.endswith("last line\n\n")
    assert messages[1].startswith("From MAILER-DAEMON  ")
    assert "Return-Path: <>\n" in messages[1]
    instance.wait_log(rf"{qid}: to=<{user}@localhost>, relay=local, "
                      r"delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, "
                      r"status=sent \(delivered to mailbox\)")
    assert not re.search(r"postino/local\[\d+\]: (warning|error|fatal)",
                         instance.log()), instance.log()


def test_maildir_delivery(instance):
    need_root(instance)
    start(instance, "home_mailbox = Maildir/\n")
    pw = ensure_user("ptest1", instance.root / "home" / "ptest1")
    qid, r = send(instance, "ptest1@localhost")
    assert r["status"] == "sent", r
    assert r["text"] == "delivered to maildir"
    maildir = instance.root / "home" / "ptest1" / "Maildir"
    for sub in ("tmp", "new", "cur"):
        st = os.stat(maildir / sub)
        assert st.st_uid == pw.pw_uid and st.st_mode & 0o777 == 0o700
    assert os.listdir(maildir / "tmp") == []
    names = os.listdir(maildir / "new")
    assert len(names) == 1
    m = re.fullmatch(r"\d+\.M\d+P\d+Q\d+\.[^,]+,S=(\d+)", names[0])
    assert m, names[0]
    data = read(maildir / "new" / names[0])
    assert int(m.group(1)) == len(data)
    qf = QueueFile(instance.queue / "active" / qid)
    assert data == (f"Return-Path: <{SENDER}>\n"
                    "Delivered-To: ptest1@localhost\n").encode() + qf.content
    assert os.stat(maildir / "new" / names[0]).st_uid == pw.pw_uid


def test_home_mailbox_file(instance):
    need_root(instance)
    start(instance, "home_mailbox = inbox\n")
    pw = ensure_user("ptest1", instance.root / "home" / "ptest1")
    _, r = send(instance, "ptest1@localhost")
    assert r["status"] == "sent" and r["text"] == "delivered to mailbox", r
    box = instance.root / "home" / "ptest1" / "inbox"
    assert os.stat(box).st_uid == pw.pw_uid
    assert read(box).startswith(f"From {SENDER}  ".encode())


def test_symlinked_mailbox_is_refused(instance):
    start(instance)
    user = own_user(instance)
    victim = instance.root / "victim"
    victim.write_bytes(b"")
    os.symlink(victim, instance.root / "spool" / user)
    _, r = send(instance, f"{user}@localhost")
    assert r["status"] == "deferred", r
    assert r["dsn"] == "4.2.0" and "symbolic link" in r["text"]
    assert read(victim) == b""


def test_unknown_user_bounces(instance):
    start(instance)
    _, r = send(instance, "no.such.user@localhost")
    assert r["status"] == "bounced", r
    assert r["dsn"] == "5.1.1"
    assert r["text"] == 'unknown user: "no.such.user"'


def test_other_user_without_root_is_deferred(instance):
    if as_root(instance):
        pytest.skip("local runs as root here: it can act as any user")
    start(instance)
    _, r = send(instance, "root@localhost")
    assert r["status"] == "deferred", r
    assert r["dsn"].startswith("4.")
    assert "does not run as root" in r["text"]


def test_recipient_delimiter(instance):
    start(instance, "recipient_delimiter = +\n",
          aliases="team: a@example.net\nteam+x: b@example.net\n")
    user = own_user(instance)
    _, r = send(instance, f"{user.upper()}+box@localhost")
    assert r["status"] == "sent", r
    text = read(instance.root / "spool" / user).decode()
    assert f"Delivered-To: {user.upper()}+box@localhost\n" in text
    # Aliases: user+ext first, then user.
    for address, want in (("team+x@localhost", "b@example.net"),
                          ("team+y@localhost", "a@example.net")):
        _, r = send(instance, address)
        assert r["status"] == "sent" and r["action"] == "expanded", r
        new = r["text"].split()[-1]
        assert QueueFile(instance.queue / "incoming" / new).addresses == \
            [want]


# -- aliases -----------------------------------------------------------------

def test_alias_to_several_users_is_forwarded(instance):
    start(instance, aliases="team: ptest1, ptest2@example.net\n"
                            "owner-team: ptest1\n")
    qid, r = send(instance, "team@localhost", notify="SUCCESS,FAILURE")
    assert r["status"] == "sent", r
    assert r["action"] == "expanded"
    m = re.fullmatch(r"forwarded as ([0-9A-F]+)", r["text"])
    assert m, r
    new = m.group(1)
    assert incoming(instance) == [new]
    qf = QueueFile(instance.queue / "incoming" / new)
    assert qf.recipients == [
        ("ptest1@localhost", "rfc822;team@localhost", "SUCCESS,FAILURE"),
        ("ptest2@example.net", "rfc822;team@localhost", "SUCCESS,FAILURE")]
    assert qf.sender == "owner-team@localhost"
    # cleanup's Received: first, then ours.
    assert re.match(rb"Received: [^\n]*\n(\t[^\n]*\n)*"
                    rb"Delivered-To: team@localhost\n", qf.content), qf.content
    assert MESSAGE.split(b"\n\n", 1)[1] in qf.content
    instance.wait_log(rf"{qid}: to=<team@localhost>, relay=local, .*"
                      rf"status=sent \(forwarded as {new}\)")


def test_alias_loop_bounces(instance):
    start(instance, aliases="loop: other\n")
    content = b"Delivered-To: LOOP@localhost\n" + MESSAGE
    _, r = send(instance, "loop@localhost", content=content)
    assert r["status"] == "bounced", r
    assert r["dsn"] == "5.4.6"
    assert r["text"] == "mail forwarding loop for loop@localhost"
    assert incoming(instance) == []


def test_alias_loop_through_two_aliases(instance):
    """loopa -> loopb -> loopa: the third delivery sees its own
    Delivered-To: in the message that came back."""
    start(instance, aliases="loopa: loopb\nloopb: loopa\n")
    qid = submit(instance, ["loopa@localhost"])
    for i, hop in enumerate(("loopa", "loopb", "loopa")):
        [r] = deliver(instance.queue / "private" / "local", instance.queue,
                      qid, [f"{hop}@localhost"])
        if r["status"] != "sent":
            break
        assert r["action"] == "expanded", r
        qid = r["text"].split()[-1]
        os.rename(instance.queue / "incoming" / qid,
                  instance.queue / "active" / qid)
    assert i == 2 and r["status"] == "bounced", r
    assert r["dsn"] == "5.4.6"
    assert r["text"] == "mail forwarding loop for loopa@localhost"


def test_alias_naming_itself_goes_to_the_mailbox(instance):
    start(instance)
    user = own_user(instance)
    write_aliases(instance, f"{user}: {user}, \\{user}\n")
    _, r = send(instance, f"{user}@localhost")
    assert r["status"] == "sent" and r["text"] == "delivered to mailbox", r
    assert incoming(instance) == []
    text = read(instance.root / "spool" / user).decode()
    assert text.count(f"From {SENDER}  ") == 1


def test_alias_to_file_and_command(instance):
    start(instance)
    out = instance.root / "out"
    write_aliases(instance,
                  f"tofile: {out}/file.mbox\n"
                  f"todir: {out}/maildir/\n"
                  f"tocmd: \"|cat > {out}/cmd.out; env > {out}/cmd.env\"\n")
    privs = "nobody"
    _, r = send(instance, "tofile@localhost")
    assert r["status"] == "sent", r
    assert r["text"] == f"delivered to file: {out}/file.mbox"
    st = os.stat(out / "file.mbox")
    assert st.st_uid == pwd.getpwnam(privs).pw_uid
    text = read(out / "file.mbox").decode()
    assert text.startswith(f"From {SENDER}  ")
    assert "Delivered-To: tofile@localhost\n" in text

    _, r = send(instance, "todir@localhost")
    assert r["status"] == "sent", r
    assert len(os.listdir(out / "maildir" / "new")) == 1

    _, r = send(instance, "tocmd@localhost")
    assert r["status"] == "sent", r
    assert r["text"].startswith("delivered to command: cat > ")
    data = read(out / "cmd.out")
    assert data.startswith(f"Return-Path: <{SENDER}>\n"
                           "Delivered-To: tocmd@localhost\n".encode())
    assert data.endswith(b"\nlast line\n")
    env = dict(line.split("=", 1) for line in
               read(out / "cmd.env").decode().splitlines() if "=" in line)
    assert env["SENDER"] == SENDER
    assert env["RECIPIENT"] == "tocmd@localhost"
    assert env["LOCAL"] == "tocmd" and env["DOMAIN"] == "localhost"
    assert env["USER"] == privs and env["PATH"] == "/usr/bin:/bin"
    assert env["ORIGINAL_RECIPIENT"] == "tocmd@localhost"
    assert os.stat(out / "cmd.out").st_uid == pwd.getpwnam(privs).pw_uid


def test_command_exit_status(instance):
    start(instance, aliases="temp: \"|echo try later; exit 75\"\n"
                            "nouser: \"|echo no such user >&2; exit 67\"\n")
    _, r = send(instance, "temp@localhost")
    assert r["status"] == "deferred", r
    assert r["dsn"] == "4.3.0"
    assert "status 75" in r["text"] and "try later" in r["text"]
    _, r = send(instance, "nouser@localhost")
    assert r["status"] == "bounced", r
    assert r["dsn"] == "5.1.1"
    assert "status 67 (user unknown)" in r["text"]
    assert "Command output: no such user" in r["text"]


def test_command_time_limit(instance):
    start(instance, "command_time_limit = 1s\n",
          aliases="slow: \"|sleep 30\"\n")
    _, r = send(instance, "slow@localhost")
    assert r["status"] == "deferred", r
    assert "time limit" in r["text"]


def test_files_and_commands_refused_from_untrusted_table(instance):
    need_root(instance)
    start(instance)
    pw = ensure_user("ptest2", instance.root / "home" / "ptest2")
    write_aliases(instance, f"evil: \"|touch {instance.root}/out/evil\"\n")
    os.chown(instance.etc / "aliases.db", pw.pw_uid, pw.pw_gid)
    _, r = send(instance, "evil@localhost")
    assert r["status"] == "bounced", r
    assert r["dsn"] == "5.7.1"
    assert r["text"] == "mail to command is restricted"
    assert not (instance.root / "out" / "evil").exists()


# -- .forward ----------------------------------------------------------------

def forward_keeps_a_copy(instance, mailbox_text):
    """ptest1's .forward keeps a copy (\\ptest1), forwards to ptest2 and
    runs a command; checks the result of one message to ptest1 (its
    mailbox delivery says mailbox_text) and returns ptest1's passwd entry
    and the .forward's path."""
    pw = ensure_user("ptest1", instance.root / "home" / "ptest1")
    ensure_user("ptest2", instance.root / "home" / "ptest2")
    out = instance.root / "out"
    forward = instance.root / "home" / "ptest1" / ".forward"
    forward.write_text(f"# keep a copy\n\\ptest1, ptest2\n"
                       f"\"|id -un > {out}/forward.id\"\n")
    os.chown(forward, pw.pw_uid, pw.pw_gid)
    os.chmod(forward, 0o644)
    _, r = send(instance, "ptest1@localhost")
    assert r["status"] == "sent", r
    assert r["action"] == "expanded"
    assert mailbox_text in r["text"]
    assert "forwarded as" in r["text"]
    assert read(out / "forward.id") == b"ptest1\n"
    [new] = incoming(instance)
    assert QueueFile(instance.queue / "incoming" / new).addresses == \
        ["ptest2@localhost"]
    return pw, forward


def test_forward_file(instance):
    need_root(instance)
    start(instance)
    forward_keeps_a_copy(instance, "delivered to mailbox")
    assert b"Delivered-To: ptest1@localhost" in \
        read(instance.root / "spool" / "ptest1")


def test_unsafe_forward_file_is_ignored(instance):
    need_root(instance)
    start(instance)
    pw = ensure_user("ptest1", instance.root / "home" / "ptest1")
    forward = instance.root / "home" / "ptest1" / ".forward"
    forward.write_text("ptest2\n")
    os.chown(forward, pw.pw_uid, pw.pw_gid)
    os.chmod(forward, 0o666)
    _, r = send(instance, "ptest1@localhost")
    assert r["status"] == "sent" and r["text"] == "delivered to mailbox", r
    assert incoming(instance) == []
    instance.wait_log(r"warning: \w+: ignoring .*\.forward")


def test_forward_file_with_home_mailbox(instance):
    # With home_mailbox, local looks for the .forward and writes the
    # mailbox as the user in one go; a .forward found is expanded, and its
    # addresses forwarded, as local itself.
    need_root(instance)
    start(instance, "home_mailbox = Maildir/\n")
    pw, forward = forward_keeps_a_copy(instance, "delivered to maildir")
    [new] = incoming(instance)
    maildir = instance.root / "home" / "ptest1" / "Maildir"
    assert len(os.listdir(maildir / "new")) == 1
    # Only comments: the mailbox.
    forward.write_text("# nothing here\n")
    _, r = send(instance, "ptest1@localhost")
    assert r["status"] == "sent" and r["text"] == "delivered to maildir", r
    assert len(os.listdir(maildir / "new")) == 2
    # Writable by others: ignored, the mailbox.
    forward.write_text("ptest2\n")
    os.chmod(forward, 0o666)
    _, r = send(instance, "ptest1@localhost")
    assert r["status"] == "sent" and r["text"] == "delivered to maildir", r
    instance.wait_log(r"warning: \w+: ignoring .*\.forward")
    assert incoming(instance) == [new]
    names = os.listdir(maildir / "new")
    assert len(names) == 3
    for name in names:
        assert os.stat(maildir / "new" / name).st_uid == pw.pw_uid
    # local itself is back to its own identity for other users' mail.
    _, r = send(instance, "ptest2@localhost")
    assert r["status"] == "sent" and r["text"] == "delivered to maildir", r
    [box] = os.listdir(instance.root / "home" / "ptest2" / "Maildir" / "new")
    assert os.stat(instance.root / "home" / "ptest2" / "Maildir" / "new" /
                   box).st_uid == pwd.getpwnam("ptest2").pw_uid


# -- :include:, table errors, full disk --------------------------------------

def test_include_file(instance):
    start(instance)
    members = instance.etc / "list.members"
    instance._write(members, "# the list\nptest1\n  ptest2@example.net, "
                             "ptest3\n")
    os.chmod(members, 0o644)
    write_aliases(instance, f"list: :include:{members}\n")
    _, r = send(instance, "list@localhost")
    assert r["status"] == "sent", r
    assert r["action"] == "expanded"
    [new] = incoming(instance)
    assert QueueFile(instance.queue / "incoming" / new).addresses == [
        "ptest1@localhost", "ptest2@example.net", "ptest3@localhost"]
    # Writable by others: not trusted, deferred.
    os.chmod(members, 0o666)
    _, r = send(instance, "list@localhost")
    assert r["status"] == "deferred", r
    assert "writable by group or others" in r["text"]


def test_alias_table_error_defers(instance):
    start(instance, "alias_maps = hash:/nonexistent/aliases\n")
    user = own_user(instance)
    _, r = send(instance, f"{user}@localhost")
    assert r["status"] == "deferred", r
    assert r["dsn"] == "4.3.0"
    assert "alias_maps lookup error" in r["text"]
    assert not (instance.root / "spool" / user).exists()


def test_full_disk_defers_and_leaves_nothing(instance):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    spool = instance.root / "spool"
    spool.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=1777",
                    "tmpfs", str(spool)], check=True)
    try:
        start(instance)
        user = own_user(instance)
        fd = os.open(spool / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"f" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        _, r = send(instance, f"{user}@localhost")
        assert r["status"] == "deferred", r
        assert r["dsn"] == "4.3.1", r
        assert "insufficient system storage" in r["text"]
        box = spool / user
        assert not box.exists() or os.stat(box).st_size == 0
        assert not (spool / f"{user}.lock").exists()
    finally:
        instance.stop()
        subprocess.run(["umount", str(spool)], check=False)


def test_include_file_commands_run_as_its_owner(instance):
    need_root(instance)
    start(instance, "allow_mail_to_commands = alias, forward, include\n")
    pw = ensure_user("ptest2", instance.root / "home" / "ptest2")
    out = instance.root / "out"
    theirs = instance.root / "home" / "ptest2" / "list"
    theirs.write_text(f"\"|id -un > {out}/theirs.id\"\n")
    os.chown(theirs, pw.pw_uid, pw.pw_gid)
    roots = instance.etc / "list.root"
    roots.write_text(f"\"|id -un > {out}/roots.id\"\n")
    write_aliases(instance, f"theirs: :include:{theirs}\n"
                            f"roots: :include:{roots}\n")
    for name in ("theirs", "roots"):
        _, r = send(instance, f"{name}@localhost")
        assert r["status"] == "sent", r
    assert read(out / "theirs.id") == b"ptest2\n"
    assert read(out / "roots.id") == b"nobody\n"


def test_include_file_commands_refused_by_default(instance):
    start(instance)
    members = instance.etc / "list.cmd"
    instance._write(members, f"\"|touch {instance.root}/out/ran\"\n")
    write_aliases(instance, f"list: :include:{members}\n")
    _, r = send(instance, "list@localhost")
    assert r["status"] == "bounced" and r["dsn"] == "5.7.1", r
    assert r["text"] == "mail to command is restricted"
    assert not (instance.root / "out" / "ran").exists()


# -- several requests on one connection -----------------------------------

def open_agent(inst):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(inst.queue / "private" / "local"))
    return sock


def test_one_connection_carries_requests_up_to_max_use(instance):
    # Three requests sent at once, as qmgr queues the next one behind the
    # one in progress; with max_use = 2 local takes two, says more=0 with
    # the second, and closes without reading the third.
    start(instance, local_args=" -o max_use=2")
    user = own_user(instance)
    qids = [submit(instance, [f"{user}@localhost"]) for _ in range(3)]
    sock = open_agent(instance)
    try:
        sock.sendall(b"".join(delivery_request(
            instance.queue, qid, [f"{user}@localhost"]) for qid in qids))
        first, done1 = read_results(sock, 1)
        second, done2 = read_results(sock, 1)
        assert first[0]["status"] == "sent" and done1["more"] == "1"
        assert second[0]["status"] == "sent" and done2["more"] == "0"
        # The end, or a reset: local closed with the third request unread.
        with pytest.raises((EOFError, ConnectionResetError)):
            read_record(sock)
    finally:
        sock.close()
    for qid in qids[:2]:
        instance.wait_log(rf"{qid}: to=<{user}@localhost>, relay=local, "
                          r".*status=sent \(delivered to mailbox\)")
    assert f"{qids[2]}: to=" not in instance.log()
    text = read(instance.root / "spool" / user).decode()
    assert len(re.findall(r"(?m)^From \S+  \w{3} ", text)) == 2


@pytest.fixture
def home_file_system(instance, request):
    """The file system of the test users' homes: the instance's own
    ("scratch"), or a journaled ext4 of the test's, loop-mounted on
    home/, where local's shared commit takes its one-fsync way
    (lib/sync_group.h).  That one needs root, mkfs.ext4 and a loop
    device; without them the test is skipped."""
    if request.param == "scratch":
        yield
        return
    need_root(instance)
    image = instance.root / "home.img"
    home = instance.root / "home"
    home.mkdir(exist_ok=True)
    try:
        subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True,
                       capture_output=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(home)],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"no journaled ext4 of the test's own: {e}")
    os.chmod(home, 0o755)
    try:
        yield
    finally:
        subprocess.run(["umount", str(home)], check=True)


@pytest.mark.parametrize("home_file_system", ["scratch", "journaled"],
                         indirect=True)
def test_maildir_deliveries_in_a_row_share_one_commit(instance,
                                                      home_file_system):
    # Three requests waiting at once: local writes all three Maildir
    # files, fsyncs them together, and only then tells their results,
    # each request's before its status=done.  So when the first result
    # arrives, all three messages are in new/ already.
    need_root(instance)
    start(instance, "home_mailbox = Maildir/\n")
    ensure_user("ptest1", instance.root / "home" / "ptest1")
    new = instance.root / "home" / "ptest1" / "Maildir" / "new"
    qids = [submit(instance, ["ptest1@localhost"]) for _ in range(3)]
    sock = open_agent(instance)
    try:
        sock.sendall(b"".join(delivery_request(
            instance.queue, qid, ["ptest1@localhost"]) for qid in qids))
        first, done = read_results(sock, 1)
        assert len(os.listdir(new)) == 3
        assert first[0]["status"] == "sent" and done["more"] == "1"
        assert first[0]["text"] == "delivered to maildir"
        for _ in qids[1:]:
            results, done = read_results(sock, 1)
            assert results[0]["status"] == "sent" and done["more"] == "1"
    finally:
        sock.close()
    header = (f"Return-Path: <{SENDER}>\n"
              "Delivered-To: ptest1@localhost\n").encode()
    assert sorted(read(new / name) for name in os.listdir(new)) == sorted(
        header + QueueFile(instance.queue / "active" / qid).content
        for qid in qids)
    for qid in qids:
        instance.wait_log(rf"{qid}: to=<ptest1@localhost>, relay=local, "
                          r".*status=sent \(delivered to maildir\)")


def test_result_is_not_held_behind_a_command(instance):
    # The first request's Maildir file waits for a commit; the second
    # runs a command that takes 4 seconds.  local commits before it runs
    # the command, so the first result does not wait for it.
    need_root(instance)
    start(instance, "home_mailbox = Maildir/\n",
          aliases="postmaster: root\nslow: \"|sleep 4\"\n")
    ensure_user("ptest1", instance.root / "home" / "ptest1")
    fast = submit(instance, ["ptest1@localhost"])
    slow = submit(instance, ["slow@localhost"])
    sock = open_agent(instance)
    try:
        began = time.monotonic()
        sock.sendall(delivery_request(instance.queue, fast,
                                      ["ptest1@localhost"]) +
                     delivery_request(instance.queue, slow,
                                      ["slow@localhost"]))
        first, _ = read_results(sock, 1)
        assert time.monotonic() - began < 3
        assert first[0]["status"] == "sent", first
        second, _ = read_results(sock, 1)
        assert time.monotonic() - began >= 4
        assert second[0]["status"] == "sent", second
        assert second[0]["text"] == 'delivered to command: sleep 4'
    finally:
        sock.close()


def test_request_left_when_the_queue_manager_is_gone(instance):
    # The second request waits in the socket while local delivers the
    # first; the sender closes at once, as a qmgr that dies would.  local
    # must not deliver what the next qmgr will ask for again.
    start(instance)
    user = own_user(instance)
    qids = [submit(instance, [f"{user}@localhost"]) for _ in range(2)]
    sock = open_agent(instance)
    sock.sendall(b"".join(delivery_request(
        instance.queue, qid, [f"{user}@localhost"]) for qid in qids))
    sock.close()
    # The first may still have been begun before the close; whichever
    # request local comes to after it is left, and local stops there.
    [left] = instance.wait_log(r"warning: (\w+): the queue manager closed "
                               r"the connection; the request is left for "
                               r"its next run")
    assert left in qids
    for qid in qids[qids.index(left):]:
        assert f"{qid}: to=" not in instance.log()


def test_message_larger_than_a_read_window_arrives_whole(instance):
    # The content is read from the queue file 64 KiB at a time and gone
    # through twice (the Delivered-To scan, then the copy): 300 KB of
    # numbered lines must arrive in the mailbox byte for byte.
    start(instance)
    user = own_user(instance)
    body = b"".join(b"line %06d %s\n" % (i, b"x" * 60)
                    for i in range(4300))
    content = (b"From: sender@example.org\nSubject: big\n\n" + body)
    qid, r = send(instance, f"{user}@localhost", content=content)
    assert r["status"] == "sent", r
    qf = QueueFile(instance.queue / "active" / qid)
    assert len(qf.content) > 4 * 64 * 1024
    data = read(instance.root / "spool" / user)
    assert data.startswith(f"From {SENDER}  ".encode())
    assert (f"\nReturn-Path: <{SENDER}>\nDelivered-To: {user}@localhost\n"
            .encode() + qf.content + b"\n") in data


def test_wait_behind_another_request_counts_as_waiting_for_an_agent(instance):
    # Both requests say they were made 10 s ago.  The first, alone on its
    # connection, shows those 10 s as connection set-up (delays c); the
    # second waited behind the first, so its wait shows as time in the
    # queue manager (b), as Postfix counts the wait for an agent.
    start(instance)
    user = own_user(instance)
    qids = [submit(instance, [f"{user}@localhost"]) for _ in range(2)]
    sock = open_agent(instance)
    try:
        sock.sendall(b"".join(delivery_request(
            instance.queue, qid, [f"{user}@localhost"],
            sent_at=time.time() - 10) for qid in qids))
        for _ in qids:
            [result], _ = read_results(sock, 1)
            assert result["status"] == "sent", result
    finally:
        sock.close()
    delays = {}
    for qid in qids:
        [line] = instance.wait_log(rf"{qid}: to=<{user}@localhost>, "
                                   r"relay=local, delay=[\d.]+, "
                                   r"delays=([\d./]+),")
        delays[qid] = [float(x) for x in line.split("/")]
    _, b1, c1, _ = delays[qids[0]]
    _, b2, c2, _ = delays[qids[1]]
    assert b1 < 1 and 9 < c1 < 30, delays
    assert 9 < b2 < 30 and c2 < 1, delays
