#!/usr/bin/python3
"""The POP3 benchmark's client (bench/pop3.sh): logs in with USER/PASS,
reads STAT, then RETRs every message with WINDOW commands pipelined (RFC
2449 PIPELINING, which both servers offer), counts the terminating
".\\r\\n" lines of the replies, and QUITs.  Prints "messages seconds
bytes login_seconds" (the RETRs alone, and the time from the connect
through the STAT reply); exits 1 on any -ERR or a short count.

    pop3_client.py PORT USER PASSWORD [WINDOW [tls]]

With "tls" the session is implicit TLS (POP3S), the certificate not
checked.
"""
import socket
import ssl
import sys
import time

END = b"\r\n.\r\n"


def read_line(sock, pending):
    while b"\r\n" not in pending:
        data = sock.recv(65536)
        if not data:
            raise SystemExit("connection closed")
        pending += data
    line, _, rest = pending.partition(b"\r\n")
    return line, rest


def command(sock, pending, text):
    sock.sendall(text.encode() + b"\r\n")
    line, pending = read_line(sock, pending)
    if not line.startswith(b"+OK"):
        raise SystemExit(f"{text.split()[0]}: {line!r}")
    return line, pending


def main():
    port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    window = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    connected = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    if len(sys.argv) > 5 and sys.argv[5] == "tls":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock)
    pending = b""
    greeting, pending = read_line(sock, pending)
    assert greeting.startswith(b"+OK"), greeting
    _, pending = command(sock, pending, f"USER {user}")
    _, pending = command(sock, pending, f"PASS {password}")
    stat, pending = command(sock, pending, "STAT")
    count = int(stat.split()[1])
    start = time.monotonic()
    login = start - connected
    sent = done = 0
    total = len(pending)
    tail = b"\r\n" + pending  # the first reply line is not a body yet
    while done < count:
        if sent < count and sent - done < window:
            batch = range(sent + 1, min(count, done + window) + 1)
            sock.sendall(b"".join(b"RETR %d\r\n" % i for i in batch))
            sent = batch[-1]
        data = sock.recv(1 << 20)
        if not data:
            raise SystemExit("connection closed during RETR")
        total += len(data)
        chunk = tail + data
        if b"\r\n-ERR" in chunk:
            raise SystemExit("-ERR during RETR")
        done += chunk.count(END) - tail.count(END)
        tail = chunk[-4:]
    seconds = time.monotonic() - start
    sock.sendall(b"QUIT\r\n")
    sock.recv(4096)
    sock.close()
    if done != count:
        raise SystemExit(f"{done} of {count} messages")
    print(count, f"{seconds:.3f}", total, f"{login:.3f}")


if __name__ == "__main__":
    main()
