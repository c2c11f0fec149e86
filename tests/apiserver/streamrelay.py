"""What the API server does with pods/exec, pods/attach and pods/portforward:
the request goes to the node's kubelet (/exec/NS/POD/CONTAINER,
/attach/NS/POD/CONTAINER, /portForward/NS/POD) with the client's upgrade
headers as they came, and once the kubelet has answered, the bytes go both
ways untouched until one side closes (the real API server's
UpgradeAwareHandler). Transparent, so kubectl's WebSocket attempt and its
SPDY fallback both reach the kubelet as kubectl sent them.

The relay is one thread per connection driving both TLS sockets without
blocking: a side is read only while what it sent the other way is below a
bound, so a peer that stops reading stops its sender instead of growing this
process, and neither direction waits on the other. Each turn of the loop
takes every TLS record a side has ready (one recv() returns one record, at
most 16 KiB) and writes up to WRITE_MAX at once, so the interpreter's cost
is paid per turn, not per record."""

import select
import socket
import ssl
import time
import urllib.parse

import nodeproxy

# The headers an upgrade needs, passed on as the client sent them.
UPGRADE_HEADERS = ("upgrade", "connection", "x-stream-protocol-version", "origin")
UPGRADE_PREFIXES = ("sec-websocket-",)
BUFFER_LIMIT = 1 << 20  # bytes read from one side and not yet written to the other
CHUNK = 1 << 16
WRITE_MAX = 1 << 18  # bytes handed to one send(): OpenSSL makes records of them
IDLE_SECONDS = 600  # a relayed connection with no byte either way for this long ends
FLUSH_SECONDS = 10  # after one side closes, the rest goes on until it stalls this long


class StreamError(Exception):
    """The request is wrong before any kubelet is asked: (code, reason, message)."""

    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def _bool(query, name):
    try:
        return nodeproxy._parse_bool(name, query.get(name, [""])[-1])
    except nodeproxy.LogOptionsError as e:
        raise StreamError(400, "BadRequest", e.message)


def kubelet_target(kind, pod, query):
    """The kubelet's path and query for `kind` (exec, attach, portforward) of
    `pod`, from the client's query ({name: [values]}) as the real API server
    builds it (streamParams: stdin=1 ..., command repeated, ports as port;
    url.Values.Encode sorts the keys)."""
    meta = pod["metadata"]
    ns, name = meta.get("namespace", "default"), meta["name"]
    if not (pod.get("spec") or {}).get("nodeName"):
        raise StreamError(400, "BadRequest", f"pod {name} does not have a host assigned")
    quote = lambda p: urllib.parse.quote(p, safe="")  # noqa: E731
    params = []
    if kind == "portforward":
        ports = [p for v in query.get("ports", []) for p in v.split(",") if p]
        if ports:
            params.append(("port", ",".join(ports)))
        path = f"/portForward/{quote(ns)}/{quote(name)}"
    else:
        try:
            container = nodeproxy.log_container(pod, query.get("container", [""])[-1])
        except nodeproxy.LogOptionsError as e:
            raise StreamError(e.code, "BadRequest", e.message)
        for flag in ("stdin", "stdout", "stderr", "tty"):
            if _bool(query, flag):
                params.append((flag, "1"))
        if kind == "exec":
            params += [("command", c) for c in query.get("command", [])]
        verb = "exec" if kind == "exec" else "attach"
        path = f"/{verb}/{quote(ns)}/{quote(name)}/{quote(container)}"
    params.sort(key=lambda kv: kv[0])  # stable: command keeps its order
    return path + ("?" + urllib.parse.urlencode(params) if params else "")


def upgrade_headers(headers):
    """[(name, value)] of the client's headers the kubelet must see."""
    out = []
    for k, v in headers.items():
        lk = k.lower()
        if lk in UPGRADE_HEADERS or lk.startswith(UPGRADE_PREFIXES):
            out.append((k, v))
    return out


def read_body(conn, headers, limit=nodeproxy.MAX_ERROR_BODY):
    """The body of a kubelet's answer that did not upgrade, by its framing
    (the connection stays open: no `Connection: close` was asked), at most
    `limit` bytes of it."""
    fields = {k.lower(): v for k, v in headers}
    data, conn.pending = conn.pending, b""
    if "content-length" in fields:
        want = min(int(fields["content-length"] or 0), limit)
        done = lambda d: len(d) >= want  # noqa: E731
    elif "chunked" in fields.get("transfer-encoding", "").lower():
        want = limit
        done = lambda d: d.startswith(b"0\r\n") or b"\r\n0\r\n" in d  # noqa: E731
    else:
        want, done = limit, lambda d: False  # noqa: E731
    while not done(data) and len(data) < want + nodeproxy.MAX_HEAD:
        chunk = conn.sock.recv(CHUNK)
        if not chunk:
            break
        data += chunk
    if "chunked" in fields.get("transfer-encoding", "").lower():
        data = nodeproxy.dechunk(data)
    return data[:want]


def drain_buffered(sock, rfile):
    """What the HTTP server's buffered reader holds past the request's head
    (a client that did not wait for the 101); the socket left non-blocking."""
    sock.setblocking(False)
    out = b""
    while True:
        try:
            chunk = rfile.read1(CHUNK)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, OSError):
            return out
        if not chunk:
            return out  # EOF: relay() sees it again on its first read
        out += chunk


class _Side:
    """One TLS socket: what was read from it waits in `out` for the other."""

    def __init__(self, sock, name):
        self.sock, self.name = sock, name
        self.out = bytearray()  # read here, to be written to the other side
        self.eof = False

    def readable_now(self):
        # Decrypted bytes OpenSSL holds are not seen by select().
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def read(self):
        """What the socket has now, up to BUFFER_LIMIT waiting."""
        while len(self.out) < BUFFER_LIMIT:
            try:
                chunk = self.sock.recv(CHUNK)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            except (OSError, ssl.SSLError):
                chunk = b""
            if not chunk:
                self.eof = True
                return
            self.out += chunk

    def write_from(self, other):
        try:
            # A view, not a copy; released before `out` is resized.
            with memoryview(other.out) as view, view[:WRITE_MAX] as part:
                n = self.sock.send(part)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return True
        except (OSError, ssl.SSLError):
            return False
        del other.out[:n]
        return True


def relay(client, client_pending, kubelet, kubelet_pending, idle_seconds=IDLE_SECONDS):
    """Copies bytes between the two sockets (blocking sockets made non-blocking
    here) until one side closes or fails, then what is left to the other side
    (until it stalls for FLUSH_SECONDS), then returns; the caller closes both.
    `*_pending`: bytes already read from that side past the HTTP head."""
    a, b = _Side(client, "client"), _Side(kubelet, "kubelet")
    a.out += client_pending
    b.out += kubelet_pending
    for s in (a, b):
        s.sock.setblocking(False)
        # As the real API server's (Go's) sockets: OpenSSL sends each
        # record with a send() of its own, and Nagle may hold a small one
        # back for an ACK (a terminal's keystrokes and echoes).
        try:
            s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a test's socketpair): nothing to batch
    last = time.monotonic()
    flush_until = None
    while True:
        now = time.monotonic()
        # What is meant for a side that has closed can go nowhere.
        if a.eof:
            b.out.clear()
        if b.eof:
            a.out.clear()
        if a.eof or b.eof:
            if not a.out and not b.out:
                return
            if flush_until is None:
                flush_until = now + FLUSH_SECONDS
            elif now > flush_until:
                return
        elif now - last > idle_seconds:
            return
        readers = [s for s in (a, b) if not s.eof and len(s.out) < BUFFER_LIMIT]
        writers = [dst for src, dst in ((a, b), (b, a)) if src.out and not dst.eof]
        if not readers and not writers:
            return
        ready_now = [s for s in readers if s.readable_now()]
        timeout = 0 if ready_now else 1.0
        r, w, _ = select.select([s.sock for s in readers], [s.sock for s in writers], [],
                                timeout)
        moved = False
        for s in readers:
            if s in ready_now or s.sock in r:
                before = len(s.out)
                s.read()
                moved = moved or len(s.out) != before or s.eof
        wrote = False
        for dst in writers:
            src = b if dst is a else a
            if dst.sock in w:
                if not dst.write_from(src):
                    dst.eof = True
                moved = wrote = True
        if moved:
            last = time.monotonic()
        # The rest goes on while it moves: a client that reads slowly (kubectl
        # cp writing a file under a loaded VM) still gets all of it, as from
        # the real API server's copy, which has no such limit at all.
        if wrote and flush_until is not None:
            flush_until = last + FLUSH_SECONDS
