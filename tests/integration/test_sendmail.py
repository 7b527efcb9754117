"""Local submission: sendmail, postdrop, pickup, showq and mailq, run for
real against an instance, sendmail run by an ordinary user.

As root, the instance's postdrop is a copy of the built one in the
instance's own command directory, set-group-ID postdrop as `make install`
makes it, and command_directory points there; sendmail itself runs as
user nobody.  As an ordinary user the instance belongs to that user and
postdrop needs no privilege.
"""
import os
import pathlib
import pwd
import grp
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import BIN, IS_ROOT
from records import QueueFile

SENDMAIL = str(BIN / "sendmail")
MAILQ = str(BIN / "mailq")
HAVE_CLEANUP = (BIN / "cleanup").exists()


def records(path):
    """The (type, data) records of a queue or maildrop file."""
    data = pathlib.Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        kind = chr(data[pos])
        length = int.from_bytes(data[pos + 1:pos + 5], "big")
        out.append((kind, data[pos + 5:pos + 5 + length]))
        pos += 5 + length
    return out


def build(recs):
    """Bytes of a file made of (type, data) records."""
    return b"".join(t.encode() + len(d).to_bytes(4, "big") + d
                    for t, d in recs)


def content(path):
    return b"".join(d for t, d in records(path) if t == "B")


def maildrop_files(inst):
    d = inst.queue / "maildrop"
    return sorted(p for p in d.iterdir() if not p.name.startswith("tmp."))


class Submission:
    """An instance prepared for local submission, and the submitting user."""

    def __init__(self, inst, services, main_cf=""):
        self.inst = inst
        lines = ["showq unix n - n - - showq\n"]
        if "pickup" in services:
            lines.append("pickup unix n - n 60 1 pickup\n")
        if "cleanup" in services:
            lines.append("cleanup unix - - n - 0 cleanup\n")
        inst.write_master_cf("".join(lines))
        extra = ""
        if IS_ROOT and inst.user is None:
            # The set-group-ID postdrop, as installed.
            cmd_dir = inst.root / "bin"
            cmd_dir.mkdir()
            shutil.copy(BIN / "postdrop", cmd_dir / "postdrop")
            os.chown(cmd_dir / "postdrop", 0, grp.getgrnam("postdrop").gr_gid)
            os.chmod(cmd_dir / "postdrop", 0o2755)
            for name in ("postino-map", "newaliases"):
                os.symlink(BIN / name, cmd_dir / name)
            extra = f"command_directory = {cmd_dir}\n"
            pw = pwd.getpwnam("nobody")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        else:
            self.uid, self.gid = inst.uid, inst.gid
        self.login = pwd.getpwuid(self.uid).pw_name
        inst.write_main_cf(extra + "message_size_limit = 200000\n" + main_cf)

    def argv(self, program, *args, config_option="-C"):
        argv = [program, config_option, str(self.inst.etc), *args]
        if os.geteuid() == 0 and self.uid != 0:
            argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                    "--clear-groups", *argv]
        return argv

    def run(self, *args, message=b"", program=SENDMAIL):
        return subprocess.run(self.argv(program, *args), input=message,
                              capture_output=True, timeout=30)


@pytest.fixture
def submit(instance):
    sub = Submission(instance, ["showq"])
    instance.start()
    return sub


def test_no_recipients_is_a_usage_error(submit):
    r = submit.run(message=b"Subject: x\n\nbody\n")
    assert r.returncode == 64, r
    assert b"fatal: no recipients specified" in r.stderr
    # -t, and no recipient in the header either (one in the body does not
    # count).
    r = submit.run("-t", message=b"Subject: x\nTo:\n\nTo: bob@example.org\n")
    assert r.returncode == 64, r
    assert b"fatal: No recipient addresses found in message header" in r.stderr
    assert b"postdrop" not in r.stderr
    assert maildrop_files(submit.inst) == []


def test_message_is_queued_in_maildrop_with_its_envelope(submit):
    message = b"Subject: hello\r\n\r\nline one\r\n.\r\nnot part\r\n"
    r = submit.run("-f", "alice@example.com", "-F", "Alice Example",
                   "bob@example.org, Carol <carol@example.org>",
                   message=message)
    assert r.returncode == 0, r.stderr
    files = maildrop_files(submit.inst)
    assert len(files) == 1
    st = files[0].stat()
    assert st.st_uid == submit.uid          # the submitter's own file
    recs = records(files[0])
    assert ("F", b"alice@example.com") in recs
    assert ("A", b"full_name=Alice Example") in recs
    assert ("A", b"uid=%d" % submit.uid) in recs
    assert [d for t, d in recs if t == "R"] == [b"bob@example.org",
                                               b"carol@example.org"]
    # CRLF became LF; the lone dot ended the message.
    assert content(files[0]) == b"Subject: hello\n\nline one\n"
    assert recs[-1] == ("E", b"")


def test_dash_i_keeps_lone_dots_and_default_sender_is_login(submit):
    r = submit.run("-i", "-t", message=b"To: bob@example.org\n\na\n.\nb")
    assert r.returncode == 0, r.stderr
    (f,) = maildrop_files(submit.inst)
    recs = records(f)
    assert ("F", submit.login.encode()) in recs
    assert ("A", b"flags=8") in recs                 # -t: cleanup extracts
    assert [d for t, d in recs if t == "R"] == []
    assert content(f) == b"To: bob@example.org\n\na\n.\nb\n"


def test_null_sender_and_bad_addresses(submit):
    r = submit.run("-f", "<>", "bob@example.org", message=b"x\n")
    assert r.returncode == 0, r.stderr
    (f,) = maildrop_files(submit.inst)
    assert ("F", b"") in records(f)
    r = submit.run("-f", "a b@example.com", "bob@example.org", message=b"x\n")
    assert r.returncode == 65
    assert b"bad sender address" in r.stderr
    r = submit.run("bob@example.org\r\nRCPT TO:<eve@example.org>",
                   message=b"x\n")
    assert r.returncode == 65
    assert b"bad recipient address" in r.stderr
    assert len(maildrop_files(submit.inst)) == 1


def test_message_over_the_size_limit_is_refused(submit):
    r = submit.run("bob@example.org", message=b"x" * 300000)
    assert r.returncode == 65
    assert b"message file too big" in r.stderr
    assert b"postdrop" not in r.stderr      # one message, not two
    assert maildrop_files(submit.inst) == []
    assert [p for p in (submit.inst.queue / "maildrop").iterdir()] == []


def test_mailq_lists_the_maildrop(submit):
    r = submit.run(program=MAILQ)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Mail queue is empty\n"
    r = submit.run("-f", "alice@example.com", "bob@example.org",
                   message=b"Subject: q\n\n" + b"y" * 1500 + b"\n")
    assert r.returncode == 0, r.stderr
    (f,) = maildrop_files(submit.inst)
    r = submit.run("-bp")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().split("\n")
    assert lines[0] == ("-Queue ID-  --Size-- ----Arrival Time---- "
                        "-Sender/Recipient-------")
    assert re.match(rf"{f.name} +1513 \w\w\w \w\w\w [ \d]\d "
                    r"\d\d:\d\d:\d\d  alice@example.com$", lines[1]), lines
    assert lines[2] == " " * 41 + "bob@example.org"
    assert lines[3] == ""
    assert lines[4] == "-- 2 Kbytes in 1 Request."


def test_mailq_says_when_the_mail_system_is_down(instance):
    sub = Submission(instance, [])
    r = sub.run(program=MAILQ)
    assert r.returncode == 69
    assert b"mail system is down" in r.stderr


def test_queue_run_without_qmgr_says_so(submit):
    r = submit.run("-q")
    assert r.returncode == 69
    assert b"Cannot flush mail queue - mail system is down" in r.stderr


def test_postdrop_refuses_anything_but_the_internal_form(submit):
    postdrop = (submit.inst.root / "bin" / "postdrop"
                if (submit.inst.root / "bin").exists() else BIN / "postdrop")
    forged_uid = build([("V", b"1"), ("S", b"0"), ("A", b"uid=0"),
                        ("F", b"root"), ("R", b"bob@example.org"),
                        ("M", b""), ("X", b""), ("E", b"")])
    forged_time = build([("V", b"1"), ("S", b"0"), ("T", b"1.000000"),
                         ("F", b"x"), ("R", b"bob@example.org"),
                         ("M", b""), ("X", b""), ("E", b"")])
    for junk in (b"", b"From: me\n\nhello\n", b"V\x00\x00\x00\x011" * 3,
                 forged_uid, forged_time):
        r = subprocess.run(submit.argv(str(postdrop), config_option="-c"),
                           input=junk,
                           capture_output=True, timeout=30)
        assert r.returncode == 65, r
        assert b"postdrop: error: uid=" in r.stderr
    assert list((submit.inst.queue / "maildrop").iterdir()) == []


@pytest.mark.skipif(not IS_ROOT, reason="needs root to make the directory")
def test_postdrop_distrusts_a_user_config(plain_instance):
    inst = plain_instance
    sub = Submission(inst, [])
    # A configuration directory the user owns is refused by the privileged
    # postdrop.
    evil = inst.root / "evil"
    evil.mkdir()
    (evil / "main.cf").write_text(f"queue_directory = {inst.queue}\n")
    os.chown(evil, sub.uid, sub.gid)
    os.chown(evil / "main.cf", sub.uid, sub.gid)
    r = subprocess.run(["setpriv", f"--reuid={sub.uid}", f"--regid={sub.gid}",
                        "--clear-groups", str(inst.root / "bin" / "postdrop"),
                        "-c", str(evil)], input=b"", capture_output=True,
                       timeout=30)
    assert r.returncode != 0
    assert b"not a configuration directory of root's" in r.stderr


def smtp_session(sub, script):
    """Runs sendmail -bs with the lines of script; returns the replies."""
    p = subprocess.Popen(sub.argv(SENDMAIL, "-bs"), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(b"".join(line + b"\r\n" for line in script),
                             timeout=30)
    assert p.returncode == 0, err
    return out.decode().split("\r\n")


def test_sendmail_bs_speaks_smtp(submit):
    replies = smtp_session(submit, [
        b"EHLO client.example",
        b"MAIL FROM:<alice@example.com>",
        b"RCPT TO:<bob@example.org> NOTIFY=FAILURE",
        b"RCPT TO:<bad address>",
        b"DATA",
        b"Subject: smtp",
        b"",
        b"..leading dot",
        b".",
        b"RCPT TO:<x@example.org>",
        b"NOOP",
        b"FOO",
        b"QUIT",
    ])
    assert replies[0].startswith("220 ")
    assert "250-SIZE 200000" in replies
    assert "250 ENHANCEDSTATUSCODES" in replies
    rest = [r for r in replies if not r.startswith("250-")][2:]
    assert rest[0] == "250 2.1.0 Ok"
    assert rest[1] == "250 2.1.5 Ok"
    assert rest[2].startswith("501 5.1.3")
    assert rest[3].startswith("354 ")
    m = re.match(r"250 2\.0\.0 Ok: queued as ([0-9A-F]+)$", rest[4])
    assert m, rest
    assert rest[5].startswith("503 5.5.1")
    assert rest[6] == "250 2.0.0 Ok"
    assert rest[7].startswith("502 5.5.2")
    assert rest[8] == "221 2.0.0 Bye"
    f = submit.inst.queue / "maildrop" / m.group(1)
    recs = records(f)
    assert ("F", b"alice@example.com") in recs
    assert ("N", b"FAILURE") in recs
    assert content(f) == b"Subject: smtp\n\n.leading dot\n"


def put_hostile(inst, sub, name, data=None, link_to=None):
    path = inst.queue / "maildrop" / name
    if link_to is not None:
        os.symlink(link_to, path)
    else:
        path.write_bytes(data)
    os.lchown(path, sub.uid, sub.gid)
    return path


@pytest.fixture
def pickup(instance):
    if not (BIN / "pickup").exists():
        pytest.skip("pickup is not built")
    sub = Submission(instance, ["showq", "pickup"])
    instance.start()
    return sub


def trigger_pickup(inst):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(inst.queue / "public" / "pickup"))
        s.sendall(b"W")


def test_pickup_moves_hostile_files_to_corrupt(pickup):
    inst = pickup.inst
    secret = inst.root / "secret"
    secret.write_text("not for pickup\n")
    put_hostile(inst, pickup, "ABCDEF01", b"garbage, not records\n")
    put_hostile(inst, pickup, "ABCDEF02", link_to=str(secret))
    # Well formed, but larger than message_size_limit.
    huge = build([("V", b"1"), ("S", b"0"), ("T", b"1764621611.000001"),
                  ("A", b"uid=%d" % pickup.uid), ("F", b"alice"),
                  ("R", b"bob@example.org"), ("M", b"")] +
                 [("B", b"z" * 65536)] * 4 + [("X", b""), ("E", b"")])
    put_hostile(inst, pickup, "ABCDEF03", huge)
    put_hostile(inst, pickup, "tmp.ignored", b"still being written")
    stale = put_hostile(inst, pickup, "tmp.stale", b"left by a dead postdrop")
    os.utime(stale, (time.time() - 2 * 86400,) * 2, follow_symlinks=False)
    trigger_pickup(inst)
    inst.wait_log(r"ABCDEF01: corrupt queue file.*moved to corrupt/ABCDEF01")
    inst.wait_log(r"ABCDEF02: symbolic link: moved to corrupt/ABCDEF02")
    inst.wait_log(r"ABCDEF03: uid=\d+: message file too big")
    inst.wait_log(r"ABCDEF03: .*moved to corrupt/ABCDEF03")
    corrupt = sorted(p.name for p in (inst.queue / "corrupt").iterdir())
    assert corrupt == ["ABCDEF01", "ABCDEF02", "ABCDEF03"]
    inst.wait_log(r"maildrop/tmp.stale: removed a stale temporary file")
    assert [p.name for p in (inst.queue / "maildrop").iterdir()] == [
        "tmp.ignored"]
    assert secret.read_text() == "not for pickup\n"
    # pickup is still there and answers the next wakeup.
    put_hostile(inst, pickup, "ABCDEF04", b"")
    trigger_pickup(inst)
    inst.wait_log(r"ABCDEF04: .*moved to corrupt/ABCDEF04")
    assert "killed by signal" not in inst.log()


@pytest.mark.skipif(not HAVE_CLEANUP, reason="cleanup is not built")
def test_sendmail_t_is_picked_up_queued_and_listed(instance):
    sub = Submission(instance, ["showq", "pickup", "cleanup"])
    instance.start()
    r = sub.run("-t", "-f", "alice@example.com", "dave@example.org", message=(
        b"From: Alice <alice@example.com>\nTo: bob@example.org\n"
        b"Bcc: carol@example.org\nSubject: picked up\n\nbody\n"))
    assert r.returncode == 0, r.stderr
    instance.wait_log(rf"[0-9A-F]+: uid={sub.uid} from=<alice@example.com>")
    deadline = time.monotonic() + 10
    while maildrop_files(instance) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert maildrop_files(instance) == []
    queued = list((instance.queue / "incoming").iterdir())
    assert len([q for q in queued if not q.name.startswith("tmp.")]) == 1
    r = sub.run(program=MAILQ)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "alice@example.com" in out
    assert "bob@example.org" in out and "carol@example.org" in out
    assert "dave@example.org" in out        # -t adds to the command line
    (queued,) = [q for q in queued if not q.name.startswith("tmp.")]
    stored = content(queued)
    assert b"Bcc:" not in stored and b"Subject: picked up" in stored
    assert "-- 1 Kbytes in 1 Request." in out


def test_dsn_options_reach_the_maildrop_file(submit):
    r = submit.run("-N", "delay,failure", "-R", "hdrs", "-V", "env-42",
                   "-B", "8BITMIME", "-oem", "-odb", "bob@example.org",
                   message=b"x\n")
    assert r.returncode == 0, r.stderr
    (f,) = maildrop_files(submit.inst)
    recs = records(f)
    assert ("A", b"dsn_envid=env-42") in recs
    assert ("A", b"dsn_ret=HDRS") in recs
    assert ("A", b"encoding=8bitmime") in recs
    assert ("N", b"DELAY,FAILURE") in recs
    r = submit.run("-N", "sometimes", "bob@example.org", message=b"x\n")
    assert r.returncode == 65
    assert b"bad DSN notify" in r.stderr


def test_sendmail_bi_rebuilds_the_aliases(instance):
    aliases = instance.etc / "aliases"
    aliases.write_text("postmaster: root\n")
    if instance.user:
        os.chown(aliases, instance.uid, instance.gid)
    sub = Submission(instance, [])
    instance.write_main_cf(f"alias_maps = hash:{aliases}\n")
    r = subprocess.run(instance.as_user([SENDMAIL, "-C", str(instance.etc),
                                         "-bi"]),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert (instance.etc / "aliases.db").exists()
    assert sub.login


def queue_file(inst, directory, name, sender, rcpts, body):
    recs = ([("V", b"1"), ("S", b"0"), ("T", b"1764621611.000001"),
             ("F", sender)] + [("R", r) for r in rcpts] + [("M", b"")] +
            [("B", body), ("X", b""), ("E", b"")])
    path = inst.queue / directory / name
    path.write_bytes(build(recs))
    os.chmod(path, 0o600)
    owner = pwd.getpwnam("postino") if inst.uid == 0 else None
    os.chown(path, owner.pw_uid if owner else inst.uid,
             owner.pw_gid if owner else inst.gid)


def test_mailq_marks_active_and_held_messages(submit):
    inst = submit.inst
    queue_file(inst, "active", "A1B2C3D4E5", b"", [b"x@example.org"],
               b"z" * 2000)
    queue_file(inst, "hold", "B1B2C3D4E5", b"a@example.com",
               [b"y@example.org", b"w@example.org"], b"q" * 100)
    queue_file(inst, "deferred", "C1B2C3D4E5", b"evil\x1b[2J@example.com",
               [b"v@example.org"], b"q")
    r = submit.run(program=MAILQ)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert re.search(r"^A1B2C3D4E5\*    2000 .* MAILER-DAEMON\n {41}"
                     r"x@example.org\n\n", out, re.M), out
    assert re.search(r"^B1B2C3D4E5!     100 .* a@example.com\n {41}"
                     r"y@example.org\n {41}w@example.org\n\n", out, re.M), out
    assert "\x1b" not in out and "evil?[2J@example.com" in out
    assert out.endswith("-- 3 Kbytes in 3 Requests.\n")


def test_pickup_leaves_files_while_cleanup_is_away(pickup):
    r = pickup.run("bob@example.org", message=b"Subject: wait\n\nx\n")
    assert r.returncode == 0, r.stderr
    (f,) = maildrop_files(pickup.inst)
    pickup.inst.wait_log(rf"{f.name}: connect to private/cleanup: .* -- "
                         r"left in maildrop for the next run")
    assert maildrop_files(pickup.inst) == [f]


def test_pickup_believes_the_file_owner_not_the_file(pickup):
    inst = pickup.inst
    forged = build([("V", b"1"), ("S", b"0"), ("T", b"1764621611.000001"),
                    ("A", b"uid=0"), ("F", b"alice"),
                    ("R", b"bob@example.org"), ("M", b""), ("X", b""),
                    ("E", b"")])
    put_hostile(inst, pickup, "ABCDEF21", forged)
    trigger_pickup(inst)
    inst.wait_log(rf"ABCDEF21: file of uid {pickup.uid} says uid 0: "
                  rf"using {pickup.uid}")


def test_pickup_refuses_links_and_fifos(pickup):
    inst = pickup.inst
    good = build([("V", b"1"), ("S", b"0"), ("T", b"1764621611.000001"),
                  ("A", b"uid=%d" % pickup.uid), ("F", b"alice"),
                  ("R", b"bob@example.org"), ("M", b""), ("X", b""),
                  ("E", b"")])
    other = inst.root / "elsewhere"
    other.write_bytes(good)
    os.link(other, inst.queue / "maildrop" / "ABCDEF11")
    os.mkfifo(inst.queue / "maildrop" / "ABCDEF12")
    trigger_pickup(inst)
    inst.wait_log(r"ABCDEF11: more than one link: moved to corrupt/ABCDEF11")
    inst.wait_log(r"ABCDEF12: not a regular file: moved to corrupt/ABCDEF12")


def test_sendmail_bs_refuses_large_messages_and_bad_order(submit):
    replies = smtp_session(submit, [
        b"HELO client.example",
        b"RCPT TO:<bob@example.org>",
        b"DATA",
        b"MAIL FROM:<a@example.com> SIZE=999999999",
        b"MAIL FROM:<a@example.com>",
        b"DATA",
        b"RCPT TO:<bob@example.org>",
        b"DATA",
        *([b"x" * 998] * 250),
        b".",
        b"RSET",
        b"QUIT",
    ])
    assert replies[1] == "250 " + replies[1][4:]
    assert replies[2].startswith("503 5.5.1")       # RCPT before MAIL
    assert replies[3].startswith("503 5.5.1")       # DATA before MAIL
    assert replies[4].startswith("552 5.3.4")       # SIZE over the limit
    assert replies[5] == "250 2.1.0 Ok"
    assert replies[6].startswith("554 5.5.1")       # DATA without RCPT
    assert replies[7] == "250 2.1.5 Ok"
    assert replies[8].startswith("354 ")
    assert replies[9].startswith("552 5.3.4")       # message too large
    assert replies[10] == "250 2.0.0 Ok"
    assert replies[11] == "221 2.0.0 Bye"
    assert list((submit.inst.queue / "maildrop").iterdir()) == []


def test_submission_works_with_stderr_closed_and_a_stray_descriptor(submit):
    # sendmail run with stderr closed and a stray descriptor open: the
    # message is queued all the same, and nothing lands in the stray file.
    stray = submit.inst.root / "stray"
    stray.write_bytes(b"")
    os.chmod(stray, 0o666)
    script = (f"exec 2>&- 7>>{stray}; "
              f"exec {' '.join(submit.argv(SENDMAIL, 'bob@example.org'))}")
    r = subprocess.run(["sh", "-c", script], input=b"x\n",
                       capture_output=False, stdout=subprocess.PIPE,
                       timeout=30)
    assert r.returncode == 0
    assert len(maildrop_files(submit.inst)) == 1
    assert stray.read_bytes() == b""


def picked_up(inst, count=1, timeout=10):
    """The queue files in incoming/ once pickup has moved count files."""
    deadline = time.monotonic() + timeout
    while True:
        names = sorted(n for n in os.listdir(inst.queue / "incoming")
                       if not n.startswith("tmp."))
        if len(names) >= count and not maildrop_files(inst):
            return [QueueFile(inst.queue / "incoming" / n) for n in names]
        assert time.monotonic() < deadline, inst.log()
        time.sleep(0.05)


@pytest.mark.skipif(not HAVE_CLEANUP, reason="cleanup is not built")
def test_local_addresses_get_myorigin_and_from_gets_the_full_name(instance):
    sub = Submission(instance, ["showq", "pickup", "cleanup"],
                     main_cf="myhostname = mx.example.net\n")
    instance.start()
    r = sub.run("-F", "Joe Q. Public", "bob", message=(
        b"To: bob, Ann Other <ann> (sister)\nSubject: local\n\nbody\n"))
    assert r.returncode == 0, r.stderr
    (qf,) = picked_up(instance)
    assert qf.sender == f"{sub.login}@mx.example.net"
    assert qf.addresses == ["bob@mx.example.net"]
    header = qf.header()
    assert (f"\nFrom: \"Joe Q. Public\" <{sub.login}@mx.example.net>"
            in header)
    assert ("\nTo: bob@mx.example.net, Ann Other <ann@mx.example.net> "
            "(sister)\n" in header)


def test_dash_n_with_dash_t_reaches_the_maildrop_file(submit):
    r = submit.run("-t", "-N", "delay,failure",
                   message=b"To: bob@example.org\n\nx\n")
    assert r.returncode == 0, r.stderr
    (f,) = maildrop_files(submit.inst)
    assert ("A", b"extract_notify=DELAY,FAILURE") in records(f)
    r = submit.run("-t", "-N", "sometimes",
                   message=b"To: bob@example.org\n\nx\n")
    assert r.returncode != 0
    assert b"-N: bad DSN notify" in r.stderr


@pytest.mark.skipif(not HAVE_CLEANUP, reason="cleanup is not built")
def test_dash_n_applies_to_recipients_from_the_header(instance):
    sub = Submission(instance, ["showq", "pickup", "cleanup"],
                     main_cf="myhostname = mx.example.net\n")
    instance.start()
    r = sub.run("-t", "-N", "delay,failure", "dave@example.org", message=(
        b"To: bob@example.org\nCc: carol\nSubject: notify\n\nbody\n"))
    assert r.returncode == 0, r.stderr
    (qf,) = picked_up(instance)
    assert qf.recipients == [
        ("dave@example.org", None, "DELAY,FAILURE"),
        ("bob@example.org", None, "DELAY,FAILURE"),
        ("carol@mx.example.net", None, "DELAY,FAILURE")]
    assert "extract_notify" not in qf.attributes
    # Without -N the header's recipients have no NOTIFY.
    r = sub.run("-t", message=b"To: erin@example.org\n\nbody\n")
    assert r.returncode == 0, r.stderr
    files = picked_up(instance, count=2)
    (other,) = [f for f in files if f.addresses == ["erin@example.org"]]
    assert other.recipients == [("erin@example.org", None, None)]


@pytest.mark.skipif(not HAVE_CLEANUP, reason="cleanup is not built")
def test_forged_extract_file_without_header_recipients(instance):
    # sendmail refuses -t without a recipient up front; only a file made
    # by hand gets this far.  It goes to corrupt/, and the log says why.
    sub = Submission(instance, ["showq", "pickup", "cleanup"])
    instance.start()
    forged = build([("V", b"1"), ("S", b"0"), ("T", b"1764621611.000001"),
                    ("A", b"uid=%d" % sub.uid), ("A", b"flags=8"),
                    ("F", b"alice"), ("M", b""),
                    ("B", b"Subject: nobody\n\nbody\n"), ("X", b""),
                    ("E", b"")])
    put_hostile(instance, sub, "ABCDEF31", forged)
    trigger_pickup(instance)
    (qid,) = instance.wait_log(rf"([0-9A-F]+): uid={sub.uid} from=<alice>")
    (line,) = instance.wait_log(r".*warning: .*ABCDEF31.*")
    assert line.endswith(
        f"warning: {qid}: maildrop file ABCDEF31 rejected by cleanup: 554 "
        "5.5.1 No recipient addresses found in message header: moved to "
        "corrupt/ABCDEF31")
    assert sorted(os.listdir(instance.queue / "corrupt")) == ["ABCDEF31"]
    assert maildrop_files(instance) == []
    assert [n for n in os.listdir(instance.queue / "incoming")
            if not n.startswith("tmp.")] == []
