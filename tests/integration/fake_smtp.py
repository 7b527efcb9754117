"""A scripted SMTP server for the SMTP client tests: it answers as told
(greeting, EHLO keywords, replies per command or per recipient) and keeps
what it saw, session by session, so that a test can check the commands,
their order and the data on the wire.

    srv = FakeSmtp(ehlo=["PIPELINING", "SIZE 1000"],
                   rcpt=lambda addr: "550 5.1.1 no" if "bad" in addr
                   else "250 2.1.5 Ok")
    ... the client connects to 127.0.0.1:srv.port ...
    srv.sessions[0]["commands"], srv.sessions[0]["data"]
    srv.sessions[0]["peer"]            # the client's address
    srv.close()

Run as a program (inside a network namespace) it serves HOST PORT with
the options of the JSON argument and appends one JSON line per finished
session to LOG:  python3 fake_smtp.py HOST PORT '{"ehlo": [...]}' LOG
"""
import json
import socket
import sys
import threading
import time


class FakeSmtp:
    def __init__(self, host="127.0.0.1", port=0, greeting="220 fake ESMTP",
                 ehlo=("PIPELINING", "8BITMIME", "SIZE 10000000", "DSN",
                       "ENHANCEDSTATUSCODES"),
                 helo_only=False, mail="250 2.1.0 Ok", rcpt=None,
                 data="354 End data with <CR><LF>.<CR><LF>",
                 data_end="250 2.0.0 Ok: queued as FAKE{n}",
                 check_pipelining=False, greeting_delay=0, log_path=None):
        self.greeting = greeting
        self.ehlo = list(ehlo)
        self.helo_only = helo_only
        self.mail = mail
        self.rcpt = rcpt or (lambda addr: "250 2.1.5 Ok")
        self.data = data
        self.data_end = data_end
        self.check_pipelining = check_pipelining
        self.greeting_delay = greeting_delay
        self.log_path = log_path
        self.sessions = []
        self.messages = 0
        self.lock = threading.Lock()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def wait_sessions(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.sessions) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.sessions)} of {count} "
                                     "SMTP sessions ended")
            time.sleep(0.02)
        return self.sessions

    def _accept(self):
        while not self.closed:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, peer[0]),
                             daemon=True).start()

    def _serve(self, conn, peer):
        session = {"commands": [], "data": [], "pipelined": None,
                   "peer": peer}
        conn.settimeout(30)
        f = conn.makefile("rb")
        try:
            self._conversation(conn, f, session)
        except (OSError, EOFError):
            session["commands"].append("<lost>")
        finally:
            try:
                f.close()
                conn.close()
            except OSError:
                pass
            with self.lock:
                self.sessions.append(session)
                if self.log_path:
                    with open(self.log_path, "a") as log:
                        log.write(json.dumps(session) + "\n")

    @staticmethod
    def _send(conn, reply):
        conn.sendall(reply.encode() + b"\r\n")

    def _line(self, f):
        line = f.readline()
        if not line:
            raise EOFError
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def _conversation(self, conn, f, session):
        if self.greeting_delay:
            time.sleep(self.greeting_delay)
        self._send(conn, self.greeting)
        if not self.greeting.startswith("2"):
            session["commands"].append(self._line(f))
            return
        while True:
            line = self._line(f)
            session["commands"].append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                if self.helo_only:
                    self._send(conn, "502 5.5.2 Error: command not "
                               "recognized")
                    continue
                lines = ["fake.example"] + self.ehlo
                text = "\r\n".join(
                    f"250{'-' if i < len(lines) - 1 else ' '}{x}"
                    for i, x in enumerate(lines))
                conn.sendall(text.encode() + b"\r\n")
            elif verb == "HELO":
                self._send(conn, "250 fake.example")
            elif verb == "MAIL":
                if self.check_pipelining and session["pipelined"] is None:
                    session["pipelined"] = self._more_waiting(conn, f)
                self._send(conn, self.mail)
            elif verb == "RCPT":
                addr = line.split(":", 1)[1].strip()
                addr = addr[1:addr.index(">")] if addr.startswith("<") \
                    else addr
                self._send(conn, self.rcpt(addr))
            elif verb == "DATA":
                self._send(conn, self.data)
                if self.data.startswith("354"):
                    session["data"].append(self._read_data(f))
                    with self.lock:
                        self.messages += 1
                        n = self.messages
                    self._send(conn, self.data_end.format(n=n))
            elif verb == "STARTTLS":
                # A server whose TLS is broken: the handshake fails.
                self._send(conn, "220 2.0.0 Ready to start TLS")
                conn.sendall(b"this is not TLS\r\n")
                return
            elif verb == "RSET":
                self._send(conn, "250 2.0.0 Ok")
            elif verb == "QUIT":
                self._send(conn, "221 2.0.0 Bye")
                return
            else:
                self._send(conn, "502 5.5.2 Error: command not recognized")

    @staticmethod
    def _more_waiting(conn, f):
        """True when the client sent more (RCPT...) without waiting for
        the reply to MAIL: something is already buffered or arrives."""
        conn.settimeout(0.5)
        try:
            return bool(f.peek(1))
        except socket.timeout:
            return False
        finally:
            conn.settimeout(30)

    def _read_data(self, f):
        """The data as sent on the wire (CRLF, dot-stuffing) without the
        final dot line."""
        raw = bytearray()
        while True:
            line = f.readline()
            if not line:
                raise EOFError
            if line == b".\r\n":
                return raw.decode("latin-1")
            raw += line


def main():
    host, port, options, log_path = sys.argv[1:5]
    opts = json.loads(options)
    rejects = opts.pop("reject_rcpt", {})
    srv = FakeSmtp(host, int(port), log_path=log_path,
                   rcpt=lambda a: rejects.get(a, "250 2.1.5 Ok"), **opts)
    print("listening", flush=True)
    srv.thread.join()


if __name__ == "__main__":
    main()
