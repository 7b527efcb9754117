"""postino-map, postalias mode and newaliases, run as programs on real files.

Every test works in its own tmp_path.  MAIL_CONFIG points at a directory
without main.cf, so the machine's own configuration never matters and the
built-in defaults are used (as they are before Postino is set up).
"""
import hashlib
import os
import subprocess
import threading
import time

import pytest

from conftest import BIN, IS_ROOT, SANITIZER_MARKERS

MAP = BIN / "postino-map"


@pytest.fixture(autouse=True)
def no_config(tmp_path, monkeypatch):
    monkeypatch.setenv("MAIL_CONFIG", str(tmp_path / "no-config"))


def run(*args, stdin=None, program=MAP, timeout=120):
    r = subprocess.run([str(program), *map(str, args)], input=stdin,
                       capture_output=True, text=True, timeout=timeout)
    bad = [m for m in SANITIZER_MARKERS if m in r.stderr]
    assert not bad, r.stderr
    return r


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(path, text):
    path.write_text(text)
    return path


def entries(*args):
    """The -s listing as a dict."""
    r = run("-s", *args)
    assert r.returncode == 0, r.stderr
    return dict(line.split("\t", 1) for line in r.stdout.splitlines())


# -- building and querying -------------------------------------------------

def test_build_and_query(tmp_path):
    src = write(tmp_path / "virtual",
                "# comment\n"
                "alice@example.com   alice\n"
                "\n"
                "bob@example.com bob, carol\n"
                "list@example.com one,\n"
                "    two\n")
    r = run(src)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "virtual.db").exists()
    r = run("-q", "alice@example.com", f"hash:{src}")
    assert (r.returncode, r.stdout) == (0, "alice\n")
    r = run("-q", "bob@example.com", src)
    assert (r.returncode, r.stdout) == (0, "bob, carol\n")
    r = run("-q", "list@example.com", src)
    assert (r.returncode, r.stdout) == (0, "one, two\n")
    r = run("-q", "nobody@example.com", src)
    assert (r.returncode, r.stdout) == (1, "")


def test_query_several_tables_first_wins(tmp_path):
    a = write(tmp_path / "a", "k from-a\n")
    b = write(tmp_path / "b", "k from-b\nonly-b b\n")
    assert run(a, b).returncode == 0
    assert run("-q", "k", a, b).stdout == "from-a\n"
    assert run("-q", "only-b", a, b).stdout == "b\n"


def test_case_folding_and_f(tmp_path):
    src = write(tmp_path / "t", "Alice@Example.COM Value-With-Case\n")
    assert run(src).returncode == 0
    r = run("-q", "ALICE@example.com", src)
    assert (r.returncode, r.stdout) == (0, "Value-With-Case\n")
    assert entries(src) == {"alice@example.com": "Value-With-Case"}

    assert run("-f", src).returncode == 0
    assert entries(src) == {"Alice@Example.COM": "Value-With-Case"}
    assert run("-f", "-q", "Alice@Example.COM", src).returncode == 0
    assert run("-f", "-q", "alice@example.com", src).returncode == 1


def test_batch_query(tmp_path):
    src = write(tmp_path / "t", "a@x 1\nb@x 2\nc@x 3\n")
    assert run(src).returncode == 0
    r = run("-q", "-", src, stdin="a@x\nmissing\nC@X\r\n\nb@x")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "a@x\t1\nC@X\t3\nb@x\t2\n"
    r = run("-q", "-", src, stdin="none\nneither\n")
    assert (r.returncode, r.stdout) == (1, "")
    # An absurdly long line is skipped with a warning; the rest goes on.
    r = run("-q", "-", src, stdin="x" * 5000 + "\n" + "y" * 3_000_000 +
            "\nb@x\n")
    assert (r.returncode, r.stdout) == (0, "b@x\t2\n")
    assert "longer than" in r.stderr


def test_batch_query_many_keys(tmp_path):
    n = 30000
    src = tmp_path / "big"
    src.write_text("".join(f"user{i:06d}@example.com dest-{i}\n"
                           for i in range(n)))
    assert run(src).returncode == 0
    keys = [f"user{i:06d}@example.com" for i in range(n - 1, -1, -2)]
    keys += ["absent@example.com"] * 10
    r = run("-q", "-", src, stdin="\n".join(keys))
    assert r.returncode == 0, r.stderr
    expected = [f"{k}\tdest-{int(k[4:10])}" for k in keys if "absent" not in k]
    assert r.stdout.splitlines() == expected


def test_list(tmp_path):
    src = write(tmp_path / "t", "b 2\na 1\nc three words\n")
    assert run(src).returncode == 0
    assert entries(src) == {"a": "1", "b": "2", "c": "three words"}


def test_btree(tmp_path):
    src = write(tmp_path / "t", "zed z\nAlpha a\nmike m\n")
    assert run(f"btree:{src}").returncode == 0
    r = run("-q", "alpha", f"btree:{src}")
    assert (r.returncode, r.stdout) == (0, "a\n")
    r = run("-s", f"btree:{src}")
    assert r.stdout == "alpha\ta\nmike\tm\nzed\tz\n"
    # A btree file is not a hash file.
    assert run("-q", "alpha", f"hash:{src}").returncode == 2


def test_delete(tmp_path):
    src = write(tmp_path / "t", "a 1\nb 2\nc 3\n")
    assert run(src).returncode == 0
    r = run("-d", "B", src)
    assert r.returncode == 0, r.stderr
    assert entries(src) == {"a": "1", "c": "3"}
    assert run("-d", "b", src).returncode == 1
    r = run("-d", "-", src, stdin="a\nnothing\n")
    assert r.returncode == 0
    assert entries(src) == {"c": "3"}
    r = run("-d", "x", tmp_path / "never-built")
    assert r.returncode == 2
    assert "never-built.db" in r.stderr


def test_insert(tmp_path):
    src = write(tmp_path / "t", "a 1\nb 2\n")
    assert run(src).returncode == 0
    r = run("-i", src, stdin="B two\nnew value here\n  continued\n")
    assert r.returncode == 0, r.stderr
    assert entries(src) == {"a": "1", "b": "two",
                            "new": "value here continued"}
    before = sha256(tmp_path / "t.db")
    r = run("-i", src, stdin="ok fine\nbroken\n")
    assert r.returncode == 1
    assert ":2:" in r.stderr
    assert sha256(tmp_path / "t.db") == before
    # -i creates a table that does not exist yet.
    fresh = tmp_path / "fresh"
    assert run("-i", fresh, stdin="k v\n").returncode == 0
    assert entries(fresh) == {"k": "v"}


def test_duplicate_warned_first_kept(tmp_path):
    src = write(tmp_path / "t", "k first\nother x\nK second\n")
    r = run(src)
    assert r.returncode == 0
    assert f'{src}:3: duplicate entry "K" (first one kept)' in r.stderr
    assert entries(src)["k"] == "first"


def test_db_mode_follows_source(tmp_path):
    src = write(tmp_path / "secret", "k v\n")
    db = tmp_path / "secret.db"
    assert run(src).returncode == 0
    assert db.stat().st_mode & 0o777 == 0o644
    src.chmod(0o600)
    assert run(src).returncode == 0
    assert db.stat().st_mode & 0o777 == 0o600
    db.unlink()
    assert run(src).returncode == 0
    assert db.stat().st_mode & 0o777 == 0o600
    # A failed first build leaves no FILE.db behind.
    bad = write(tmp_path / "bad", "no-value\n")
    bad.chmod(0o640)
    assert run(bad).returncode == 1
    assert not (tmp_path / "bad.db").exists()


# -- errors ------------------------------------------------------------------

def test_syntax_error_keeps_old_table(tmp_path):
    src = write(tmp_path / "t", "a 1\nb 2\n")
    assert run(src).returncode == 0
    db = tmp_path / "t.db"
    before = sha256(db)
    write(src, "a 1\nno-value-here\nb 2\n   \n\tcontinues b\nc\n")
    r = run(src)
    assert r.returncode == 1
    assert f"{src}:2:" in r.stderr
    assert f"{src}:6:" in r.stderr
    assert sha256(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t", "t.db"]


def test_missing_source(tmp_path):
    r = run(tmp_path / "nothing-here")
    assert r.returncode == 2
    assert "nothing-here" in r.stderr
    assert "No such file or directory" in r.stderr
    assert not (tmp_path / "nothing-here.db").exists()


def test_source_is_a_directory(tmp_path):
    (tmp_path / "dir").mkdir()
    r = run(tmp_path / "dir")
    assert r.returncode == 2
    assert "not a regular file" in r.stderr


def test_cannot_replace_db(tmp_path):
    src = write(tmp_path / "t", "a 1\n")
    (tmp_path / "t.db").mkdir()
    r = run(src)
    assert r.returncode == 2
    assert "t.db" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t", "t.db"]


@pytest.mark.skipif(IS_ROOT, reason="root reads and writes anyway")
def test_permission_denied(tmp_path):
    src = write(tmp_path / "t", "a 1\n")
    src.chmod(0)
    r = run(src)
    assert r.returncode == 2
    assert "Permission denied" in r.stderr
    src.chmod(0o644)
    tmp_path.chmod(0o555)
    try:
        r = run(src)
        assert r.returncode == 2
        assert "Permission denied" in r.stderr
    finally:
        tmp_path.chmod(0o755)


def test_corrupt_db(tmp_path):
    src = write(tmp_path / "t", "a 1\n")
    (tmp_path / "t.db").write_bytes(b"this is not a Berkeley DB file\n" * 200)
    r = run("-q", "a", src)
    assert r.returncode == 2
    assert "t.db" in r.stderr
    r = run("-q", "-", src, stdin="a\n")
    assert r.returncode == 2
    assert run("-q", "a", tmp_path / "absent").returncode == 2


def test_usage(tmp_path):
    r = run()
    assert r.returncode == 1
    assert "usage:" in r.stderr
    assert run("-q", "k", "-s", tmp_path / "t").returncode == 1
    assert run("-x", tmp_path / "t").returncode == 1
    r = run("-c", tmp_path / "no-such-dir", tmp_path / "t")
    assert r.returncode == 2
    assert "main.cf" in r.stderr


# -- other types -------------------------------------------------------------

def test_pcre_checked_not_built(tmp_path):
    good = write(tmp_path / "good.pcre", "/^user(\\d+)@/ local-$1\n")
    r = run(f"pcre:{good}")
    assert r.returncode == 0, r.stderr
    assert "pcre: nothing to build" in r.stderr
    assert not (tmp_path / "good.pcre.db").exists()
    r = run("-q", "User7@example.com", f"pcre:{good}")
    assert (r.returncode, r.stdout) == (0, "local-7\n")

    bad = write(tmp_path / "bad.pcre", "/ok/ fine\n/a(b/ broken\n")
    r = run(f"pcre:{bad}")
    assert r.returncode == 1
    assert f"{bad}:2" in r.stderr
    assert "position" in r.stderr or "offset" in r.stderr

    assert run(f"pcre:{tmp_path / 'missing'}").returncode == 2


def test_texthash_and_static(tmp_path):
    src = write(tmp_path / "t", "Key value\n")
    r = run(f"texthash:{src}")
    assert r.returncode == 0, r.stderr
    assert "texthash: nothing to build" in r.stderr
    assert run("-q", "key", f"texthash:{src}").stdout == "value\n"
    assert run("static:anything").returncode == 0
    assert run("-q", "x", "static:anything").stdout == "anything\n"


# -- aliases -----------------------------------------------------------------

ALIASES = """\
# system aliases
postmaster: root
Root: alice, bob,
    :include:/etc/postino/staff.list,
\t"|/usr/bin/filter -x, -y", /var/mail/archive
# a comment inside does not end the entry above
"with space: and colon": carol
abuse : postmaster
root: duplicate
"""


def test_aliases(tmp_path):
    src = write(tmp_path / "aliases", ALIASES)
    r = run("-a", src)
    assert r.returncode == 0, r.stderr
    assert f'{src}:9: duplicate entry "root" (first one kept)' in r.stderr
    assert entries("-a", src) == {
        "postmaster": "root",
        "root": 'alice, bob, :include:/etc/postino/staff.list, '
                '"|/usr/bin/filter -x, -y", /var/mail/archive',
        "with space: and colon": "carol",
        "abuse": "postmaster",
    }
    r = run("-a", "-q", "ROOT", src)
    assert r.stdout.startswith("alice, bob, :include:")


def test_alias_errors(tmp_path):
    src = write(tmp_path / "aliases", "ok: fine\n")
    assert run("-a", src).returncode == 0
    before = sha256(tmp_path / "aliases.db")
    write(src, "ok: fine\nno colon here\nempty:\n\"open: x\n  : y\n"
               "bad name: z\n")
    r = run("-a", src)
    assert r.returncode == 1
    for line in (2, 3, 4, 6):
        assert f"{src}:{line}:" in r.stderr, r.stderr
    assert sha256(tmp_path / "aliases.db") == before


def test_postalias_name(tmp_path):
    link = tmp_path / "postalias"
    link.symlink_to(MAP)
    src = write(tmp_path / "aliases", "a: b, c\n")
    r = run(src, program=link)
    assert r.returncode == 0, r.stderr
    assert run("-q", "a", src).stdout == "b, c\n"


def test_newaliases(tmp_path):
    newaliases = BIN / "newaliases"
    assert newaliases.is_symlink()
    etc = tmp_path / "etc"
    etc.mkdir()
    one = write(tmp_path / "aliases", "postmaster: root\nRoot: admin\n")
    two = write(tmp_path / "more", "x: y, z\n")
    write(etc / "main.cf",
          f"alias_database = hash:{one}, btree:{two} "
          f"texthash:{tmp_path / 'skipped'}\n")
    r = run("-c", etc, program=newaliases)
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stderr
    assert run("-q", "root", one).stdout == "admin\n"
    assert run("-q", "x", f"btree:{two}").stdout == "y, z\n"

    write(one, "postmaster root\n")
    r = run("-c", etc, program=newaliases)
    assert r.returncode == 1
    assert f"{one}:1:" in r.stderr
    assert run("-c", etc, "extra", program=newaliases).returncode == 1


# -- concurrency ---------------------------------------------------------------

def version_text(tag, n=20000):
    return "".join(f"key{i:05d} {tag}-{i}\n" for i in range(n))


def test_concurrent_builds(tmp_path):
    src = tmp_path / "t"
    a_text, b_text = version_text("a"), version_text("b")
    versions = [dict(line.split(" ", 1) for line in t.splitlines())
                for t in (a_text, b_text)]
    for _ in range(3):
        write(src, a_text)
        first = subprocess.Popen([str(MAP), str(src)], stderr=subprocess.PIPE)
        tmp = tmp_path / "t.new"
        write(tmp, b_text)
        os.replace(tmp, src)
        second = subprocess.Popen([str(MAP), str(src)], stderr=subprocess.PIPE)
        for p in (first, second):
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        got = entries(src)
        assert got in versions
        assert sorted(p.name for p in tmp_path.iterdir()) == ["t", "t.db"]


def test_live_rebuild(tmp_path):
    """Readers never fail and never miss a key while the table is rebuilt
    100 times: one long-running -q - reader, one loop of -q calls."""
    common = [f"common{i:04d}@example.com" for i in range(300)]
    texts = ["".join(f"{k} {tag}\n" for k in common) +
             "".join(f"only-{tag}-{i} x\n" for i in range(3000))
             for tag in ("v1", "v2")]
    src = write(tmp_path / "t", texts[0])
    assert run(src).returncode == 0

    stop = threading.Event()
    failures = []
    batch = subprocess.Popen([str(MAP), "-q", "-", str(src)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    rounds = [0]
    output = []

    def feed():
        chunk = ("\n".join(common) + "\n").encode()
        while not stop.is_set():
            batch.stdin.write(chunk)
            batch.stdin.flush()
            rounds[0] += 1
            time.sleep(0.01)
        batch.stdin.close()

    def drain():
        output.append(batch.stdout.read())

    def single_queries():
        while not stop.is_set():
            r = subprocess.run([str(MAP), "-q", common[7], str(src)],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0 or r.stdout not in ("v1\n", "v2\n"):
                failures.append((r.returncode, r.stdout, r.stderr))
            time.sleep(0.01)

    threads = [threading.Thread(target=f)
               for f in (feed, drain, single_queries)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60  # ~2 s; sanitizer builds ~15 s
        for i in range(100):
            write(src, texts[(i + 1) % 2])
            r = run(src)
            assert r.returncode == 0, r.stderr
            assert time.monotonic() < deadline, f"only {i} rebuilds in 60 s"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    err = batch.stderr.read().decode()
    assert batch.wait(timeout=60) == 0, err
    assert not [m for m in SANITIZER_MARKERS if m in err], err
    assert not failures, failures[:3]
    lines = output[0].decode().splitlines()
    assert len(lines) == rounds[0] * len(common)
    for line in lines:
        key, value = line.split("\t")
        assert value in ("v1", "v2"), line
