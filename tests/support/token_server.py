#!/usr/bin/env python3
"""A registry token service for pull tests (the Bearer flow of the distribution
spec): GET /token?service=S&scope=repository:NAME:pull answers {"token": JWT},
the JWT signed RS256 with KEY and carrying CERT in its x5c header, which the
registry trusts through its rootcertbundle. Needs Basic user:secret, like a
real token service with accounts; anonymous requests get 401.
  token_server.py PORT KEY.pem CERT.pem ISSUER"""
import base64
import http.server
import json
import subprocess
import sys
import time
import urllib.parse

PORT, KEY, CERT, ISSUER = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_cert() -> str:
    der = subprocess.run(["openssl", "x509", "-in", CERT, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return base64.b64encode(der).decode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path != "/token":
            self.send_error(404)
            return
        if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"user:secret").decode():
            self.send_error(401)
            return
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [der_cert()]}
        claims = {"iss": ISSUER, "sub": "user", "aud": query.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": str(now),
                  "access": access}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY],
                                   input=signing_input.encode(), check=True,
                                   capture_output=True).stdout
        body = json.dumps({"token": signing_input + "." + b64url(signature)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
