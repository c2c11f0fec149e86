#!/usr/bin/env python3
"""One hop of bench/run-streams alone: a client straight to the agent's
:10250 (TLS with the API server's kubelet client certificate, WebSocket
framing as kubectl's default, no API server, no relay), so the agent's share
of a `kubectl exec -i -- cat` or `kubectl port-forward` copy is known.

  streams_direct.py exec HOST PORT CERT KEY NS POD CONTAINER FILE
      v5.channel.k8s.io: FILE to stdin (channel 0), then the CLOSE signal;
      stdout (channel 1) to our stdout until the agent closes.
  streams_direct.py portforward HOST PORT CERT KEY NS POD PORT BYTES
      v4.channel.k8s.io: BYTES of the pod's PORT (data channel 0, after the
      agent's 2-byte port prefix) to our stdout.

One thread, non-blocking sockets and select (an SSL object is not to be
read and written from two threads at once). Messages go out masked, as a
client's must."""

import base64
import os
import select
import socket
import ssl
import struct
import sys
import urllib.parse

CHUNK = 1 << 16


def connect(host, port, cert, key, path, protocol):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    raw = socket.create_connection((host, int(port)), timeout=30)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go's client
    sock = ctx.wrap_socket(raw)
    wskey = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: Upgrade\r\n"
                  f"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Key: {wskey}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n")
                 .encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            sys.exit(f"upgrade: the agent closed: {head!r}")
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        sys.exit(f"upgrade refused: {head.decode(errors='replace')}")
    sock.setblocking(False)
    return sock, bytearray(rest)


def frame(payload, opcode=2):
    """A masked client frame (the mask: XOR as one big integer, in C)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    mask = os.urandom(4)
    reps = (n + 3) // 4
    m = int.from_bytes(mask * reps, "big") >> (8 * (4 * reps - n)) if n else 0
    body = (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big") if n else b""
    return head + mask + body


def messages(buf):
    """Complete server frames in `buf` (unmasked, unfragmented: the agent
    writes one frame per message), removed from it: [(opcode, payload)]."""
    out = []
    while len(buf) >= 2:
        n = buf[1] & 0x7F
        at = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < at + n:
            break
        out.append((buf[0] & 0x0F, bytes(buf[at:at + n])))
        del buf[:at + n]
    return out


def pump(sock, inbuf, to_send, on_message, done):
    """Sends `to_send` (a generator of frames) while reading until done()."""
    out = bytearray()
    pending = next(to_send, None)
    eof = False
    while not done() and not eof:
        if pending is not None and len(out) < 4 * CHUNK:
            out += pending
            pending = next(to_send, None)
        r, w, _ = select.select([sock], [sock] if out else [], [], 30)
        if not r and not w and not sock.pending():
            sys.exit("no progress for 30 s")
        if r or sock.pending():
            while True:
                try:
                    chunk = sock.recv(CHUNK)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                if not chunk:
                    eof = True
                    break
                inbuf += chunk
                if sock.pending() == 0:
                    break
            for opcode, payload in messages(inbuf):
                if opcode == 8:
                    eof = True
                elif opcode in (1, 2):
                    on_message(payload)
        if w and out:
            try:
                n = sock.send(bytes(out[:4 * CHUNK]))
                del out[:n]
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass


def run_exec(host, port, cert, key, ns, pod, container, path):
    q = urllib.parse.urlencode([("command", "cat"), ("input", "1"), ("output", "1")])
    sock, inbuf = connect(host, port, cert, key,
                          f"/exec/{ns}/{pod}/{container}?{q}", "v5.channel.k8s.io")
    stdout = sys.stdout.buffer

    def frames():
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK - 1):
                yield frame(b"\x00" + chunk)
        yield frame(b"\xff\x00")  # v5: stdin's CLOSE signal

    status = []

    def on_message(m):
        if m[:1] == b"\x01":
            stdout.write(m[1:])
        elif m[:1] == b"\x03":
            status.append(m[1:])

    pump(sock, inbuf, frames(), on_message, lambda: bool(status))
    stdout.flush()
    if not status or b'"Success"' not in status[0]:
        sys.exit(f"exec status: {status}")


def run_portforward(host, port, cert, key, ns, pod, pod_port, size):
    sock, inbuf = connect(host, port, cert, key, f"/portForward/{ns}/{pod}?port={pod_port}",
                          "v4.channel.k8s.io")
    stdout = sys.stdout.buffer
    left = [int(size)]
    prefixed = set()

    def on_message(m):
        ch = m[0]
        if ch not in prefixed:  # the agent's first message per channel: the port
            prefixed.add(ch)
            m = m[3:]
            if not m:
                return
        else:
            m = m[1:]
        if ch == 0:
            stdout.write(m)
            left[0] -= len(m)
        elif m:
            sys.exit(f"port-forward error: {m!r}")

    pump(sock, inbuf, iter(()), on_message, lambda: left[0] <= 0)
    stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) == 10 and sys.argv[1] == "exec":
        run_exec(*sys.argv[2:])
    elif len(sys.argv) == 10 and sys.argv[1] == "portforward":
        run_portforward(*sys.argv[2:])
    else:
        sys.exit(__doc__)
