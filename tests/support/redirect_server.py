#!/usr/bin/env python3
"""Two tiny HTTP servers for the blob-redirect test: the "registry" on PORT
wants Basic credentials (401 first), then answers every blob GET with 307 to
the "storage" on PORT+1, which serves FILE. Both log the Authorization header
they got: the registry must see the credentials, the storage must not.
  redirect_server.py PORT FILE LOG"""
import http.server
import sys
import threading

PORT, FILE, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def log(who, handler):
    with open(LOG, "a") as f:
        f.write("%s GET %s auth=%s\n" % (who, handler.path,
                                          handler.headers.get("Authorization", "none")))


class Registry(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        log("registry", self)
        if "Authorization" not in self.headers:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(307)
        self.send_header("Location", "http://127.0.0.1:%d/storage/blob?sig=x" % (PORT + 1))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Storage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        log("storage", self)
        data = open(FILE, "rb").read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


storage = http.server.HTTPServer(("127.0.0.1", PORT + 1), Storage)
threading.Thread(target=storage.serve_forever, daemon=True).start()
http.server.HTTPServer(("127.0.0.1", PORT), Registry).serve_forever()
