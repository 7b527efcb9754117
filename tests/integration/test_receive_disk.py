"""A full queue file system, seen from an SMTP client: the message gets
452 4.3.1 after DATA, nothing is left in incoming/, and the same message is
accepted once there is room again."""
import os
import smtplib
import subprocess

import pytest

from conftest import IS_ROOT
from smtpd_instance import queued, start_smtpd

HEADER = ("From: alice@mx.example.net\r\nTo: bob@mx.example.net\r\n"
          "Subject: full disk\r\n\r\n")


def fill(path):
    """Writes into path until the file system says no room."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"f" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root")
def test_full_queue_file_system_gives_452_then_accepts(instance):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755",
                    "tmpfs", str(instance.queue)], check=True)
    try:
        if instance.user:
            os.chown(instance.queue, instance.uid, instance.gid)
        ports = start_smtpd(instance, "message_size_limit = 1000000\n")
        filler = instance.queue / "filler"
        fill(filler)
        message = HEADER + ("y" * 76 + "\r\n") * 3000  # 234 KB: more than
        # is left
        with smtplib.SMTP("127.0.0.1", ports.smtp, timeout=30) as c:
            c.ehlo("client.example")
            with pytest.raises(smtplib.SMTPDataError) as refused:
                c.sendmail("alice@mx.example.net", ["bob@mx.example.net"],
                           message)
            assert refused.value.smtp_code == 452
            assert refused.value.smtp_error.startswith(b"4.3.1 ")
            assert queued(instance) == {}
            # Room again: the same session goes on and the retry is queued.
            filler.unlink()
            refused_nothing = c.sendmail("alice@mx.example.net",
                                         ["bob@mx.example.net"], message)
            assert refused_nothing == {}
        files = queued(instance)
        assert len(files) == 1
        (qf,) = files.values()
        assert qf.addresses == ["bob@mx.example.net"]
        assert "Subject: full disk" in qf.header()
        instance.wait_log(r"reject: END-OF-MESSAGE from .*: 452 4\.3\.1")
    finally:
        instance.stop()
        subprocess.run(["umount", str(instance.queue)], check=True)
