#!/usr/bin/env python3
"""A tiny stand-in for a kubelet's own HTTPS server, for testing what the test
API server (tests/apiserver) proxies to it. Loopback only, port 0.

    fake_kubelet.py --cert C --key K --client-ca CA --logs DIR --record FILE

Client certificates are required and verified against CA (as a kubelet with
--client-ca-file). Prints "listening on PORT" once it accepts connections.

- GET /healthz: ok
- GET /containerLogs/NS/POD/CONTAINER: DIR/NS_POD_CONTAINER.log (with
  previous=true: ...previous.log) with tailLines, limitBytes and timestamps;
  follow=true streams what is appended until DIR/NS_POD_CONTAINER.end exists.
  No such file: 404 (400 for previous, as the kubelet words it).
- GET or POST /exec/..., /attach/..., /portForward/... with an Upgrade header:
  101 with the same Upgrade, the first offered Sec-WebSocket-Protocol (and
  Sec-WebSocket-Accept) or X-Stream-Protocol-Version, then every byte read is
  written back until the client closes; a line "bye" makes it close first.
  Container "refused": 404 `container not found ("refused")`, as a kubelet.
- anything else: 200 with JSON {method, path, query, body} (an echo).
Every request is appended to FILE as a JSON line: method, path, query and the
client certificate's CN and O (an upgrade: its headers too, and a line
{"ended": PATH} once it is over).
"""

import argparse
import base64
import hashlib
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STAMP = "2026-01-02T03:04:05.000000006Z "
FOLLOW_POLL_SECONDS = 0.02  # how often a follow looks at its file (as the kubelet would)
FOLLOW_LIMIT_SECONDS = 120  # a follow nobody ends stops here: every loop bounded


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def peer(self):
        cert = self.connection.getpeercert() or {}
        cn, orgs = "", []
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
                elif k == "organizationName":
                    orgs.append(v)
        return cn, orgs

    def record(self, method, url, extra=None):
        cn, orgs = self.peer()
        line = {"method": method, "path": url.path, "query": url.query, "user": cn,
                "groups": orgs}
        line.update(extra or {})
        self.write_record(line)

    def write_record(self, line):
        with open(self.server.args.record, "a") as f:
            f.write(json.dumps(line) + "\n")

    def answer(self, code, body, content_type="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def handle_any(self, method):
        url = urllib.parse.urlsplit(self.path)
        if self.headers.get("Upgrade") and url.path.split("/")[1:2] in (
                ["exec"], ["attach"], ["portForward"]):
            return self.upgrade(method, url)
        self.record(method, url)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        parts = url.path.split("/")
        if method == "GET" and url.path == "/healthz":
            return self.answer(200, "ok")
        if method == "GET" and len(parts) == 5 and parts[1] == "containerLogs":
            return self.logs(parts[2], parts[3], parts[4], query)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        self.answer(200, json.dumps({"method": method, "path": url.path, "query": url.query,
                                     "body": body}), "application/json")

    def upgrade(self, method, url):
        names = ("Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                 "Sec-WebSocket-Protocol", "X-Stream-Protocol-Version")
        seen = {k: self.headers.get_all(k) for k in names if self.headers.get(k) is not None}
        self.record(method, url, {"upgrade": seen})
        if url.path.endswith("/refused"):
            return self.answer(404, 'container not found ("refused")')
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", self.headers["Upgrade"])
        self.send_header("Connection", "Upgrade")
        key = self.headers.get("Sec-WebSocket-Key")
        if key:
            digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
            self.send_header("Sec-WebSocket-Accept", base64.b64encode(digest.digest()).decode())
        for name in ("Sec-WebSocket-Protocol", "X-Stream-Protocol-Version"):
            offered = ",".join(self.headers.get_all(name) or [])
            if offered:
                self.send_header(name, offered.split(",")[0].strip())
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            while True:
                data = self.rfile.read1(65536)
                if not data:
                    break
                self.wfile.write(data)
                self.wfile.flush()
                if data.endswith(b"bye\n"):
                    break
        except OSError:
            pass  # the client went away: the end all the same
        self.write_record({"ended": url.path})

    def logs(self, ns, pod, container, query):
        base = os.path.join(self.server.args.logs, f"{ns}_{pod}_{container}")
        previous = query.get("previous") == "true"
        path = base + (".previous.log" if previous else ".log")
        if not os.path.exists(path):
            if previous:
                return self.answer(400, f'previous terminated container "{container}" in pod '
                                        f'"{pod}" not found')
            return self.answer(404, f'container "{container}" in pod "{pod}" is not available')
        with open(path, "rb") as f:
            data = f.read()
        lines = data.splitlines(keepends=True)
        if "tailLines" in query:
            n = int(query["tailLines"])
            lines = lines[len(lines) - n:] if n else []
        out = b"".join(self.stamped(line, query) for line in lines)
        if "limitBytes" in query:
            out = out[:int(query["limitBytes"])]
        if query.get("follow") != "true":
            return self.answer(200, out)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.chunk(out)
        offset = len(data)
        deadline = time.monotonic() + FOLLOW_LIMIT_SECONDS
        while time.monotonic() < deadline:
            ended = os.path.exists(base + ".end")  # before the read: nothing is lost
            with open(path, "rb") as f:
                f.seek(offset)
                more = f.read()
            # Whole lines only, as a kubelet sends them.
            more = more[:more.rfind(b"\n") + 1]
            if more:
                offset += len(more)
                self.chunk(b"".join(self.stamped(line, query)
                                    for line in more.splitlines(keepends=True)))
            elif ended:
                break
            else:
                time.sleep(FOLLOW_POLL_SECONDS)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def stamped(self, line, query):
        return (STAMP.encode() + line) if query.get("timestamps") == "true" else line

    def chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca", required=True)
    p.add_argument("--logs", required=True)
    p.add_argument("--record", required=True)
    args = p.parse_args()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(args.client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    httpd.args = args
    print(f"listening on {httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
