#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 relay between custos and the test S3 server.

    faultproxy.py LISTEN_PORT UPSTREAM_PORT CONTROL_FILE STATS_FILE

Listens on 127.0.0.1:LISTEN_PORT and relays to 127.0.0.1:UPSTREAM_PORT. The
requests from the client are parsed (head, then Content-Length bytes of
body); the responses are relayed as bytes. CONTROL_FILE holds one line
"MODE COUNT" (read again whenever it changes): the next COUNT requests
that fit MODE get the fault:
  503    answered 503 ServiceUnavailable (S3 XML), connection closed
  drop   requests with a body of at least 1 MiB: half the body is relayed,
         then both connections are closed (a connection dropped mid-body)
  stall  never answered: the connection is held open, silent, until the
         client gives up (or 120 s)
  slow   COUNT is bytes per second: every body is relayed at that rate
  ok     nothing
STATS_FILE gets one line per fault made ("503", "drop", "stall"), so a
test knows the faults happened. Runs until killed.
"""
import os
import socket
import sys
import threading
import time

LISTEN, UPSTREAM = int(sys.argv[1]), int(sys.argv[2])
CONTROL, STATS = sys.argv[3], sys.argv[4]
lock = threading.Lock()
state = {"mtime": None, "mode": "ok", "count": 0}


def control():
    """The current mode and count, reread when the file changed."""
    try:
        m = os.stat(CONTROL).st_mtime_ns
    except OSError:
        return
    if m != state["mtime"]:
        state["mtime"] = m
        try:
            parts = open(CONTROL).read().split()
        except OSError:
            parts = []
        state["mode"] = parts[0] if parts else "ok"
        state["count"] = int(parts[1]) if len(parts) > 1 else 0


def take(kind, body_len):
    """1 if this request gets fault `kind` (and counts it)."""
    with lock:
        control()
        if state["mode"] != kind or state["count"] <= 0:
            return False
        if kind == "drop" and body_len < (1 << 20):
            return False
        state["count"] -= 1
        with open(STATS, "a") as f:
            f.write(kind + "\n")
        return True


def slow_rate():
    with lock:
        control()
        return state["count"] if state["mode"] == "slow" else 0


def read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            return None, buf
        buf += d
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return int(v.strip())
    return 0


def close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass


def downstream(up, cl):
    try:
        while True:
            d = up.recv(65536)
            if not d:
                break
            cl.sendall(d)
    except OSError:
        pass
    close(up, cl)


def send_body(cl, up, buf, n, limit, rate):
    """Relays n body bytes (buf first); stops after `limit`. Returns the rest of buf."""
    sent = 0
    while sent < n and sent < limit:
        if not buf:
            buf = cl.recv(65536)
            if not buf:
                raise OSError("client closed")
        k = min(len(buf), n - sent, limit - sent, rate if rate > 0 else len(buf))
        up.sendall(buf[:k])
        buf = buf[k:]
        sent += k
        if rate > 0:
            time.sleep(k / rate)
    return buf


def serve(cl):
    try:
        up = socket.create_connection(("127.0.0.1", UPSTREAM))
    except OSError:
        close(cl)
        return
    threading.Thread(target=downstream, args=(up, cl), daemon=True).start()
    buf = b""
    try:
        while True:
            head, buf = read_head(cl, buf)
            if head is None:
                break
            n = content_length(head)
            if take("503", n):
                body = (b"<?xml version=\"1.0\"?><Error><Code>ServiceUnavailable</Code>"
                        b"<Message>fault proxy</Message></Error>")
                cl.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml"
                           b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                           + body)
                break
            if take("stall", n):
                cl.settimeout(120)
                try:
                    while cl.recv(65536):
                        pass
                except OSError:
                    pass
                break
            up.sendall(head)
            if take("drop", n):
                send_body(cl, up, buf, n, n // 2, 0)
                break
            buf = send_body(cl, up, buf, n, n, slow_rate())
    except OSError:
        pass
    close(cl, up)


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", LISTEN))
    srv.listen(64)
    while True:
        cl, _ = srv.accept()
        threading.Thread(target=serve, args=(cl,), daemon=True).start()


main()
