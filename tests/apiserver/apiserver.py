#!/usr/bin/env python3
"""A test Kubernetes API server: the subset kernelet and kubectl use, with the
real semantics (resourceVersion, list/watch with bookmarks and the streaming
list, 410 Expired, selectors, optimistic concurrency, graceful pod deletion,
strategic merge patch from the official schema, status subresources,
bearer-token and client-certificate authentication) and switches to fail or
stall requests for fault tests. Written independently of kernelet's apiclient.

    apiserver.py --cert C --key K [--port 0] [--client-ca CA] [--token T=USER]...
                 [--readonly-token T=USER]... [--schemas DIR] [--validate-agent USER]
                 [--state FILE] [--bookmark-seconds S] [--token-ttl S]
                 [--token-auth-file CSV] [--authz-policy JSON]
                 [--kubelet-client-cert C --kubelet-client-key K]

Users: --token users may do anything, --readonly-token users only read, a
client certificate's CN (groups from O) may do anything; --token-auth-file
users (token,user,uid,"groups") are authorized by --authz-policy (access.py),
whose rules also answer SubjectAccessReviews; TokenReviews know every token.

What the real API server does with a kubelet's own server (nodeproxy.py):
pods/NAME/log is proxied, streaming, to the node's /containerLogs/...,
nodes/NAME/proxy/PATH to the node's /PATH, with the kubelet client certificate;
pods/NAME/exec, attach and portforward go to the node's /exec, /attach and
/portForward with the client's upgrade headers, and once the kubelet has
upgraded, the bytes are relayed both ways (streamrelay.py).

Services get a cluster IP from SERVICE_CIDR unless they name one (or "None");
the "kubernetes" Service in "default" is there from the start, at 10.96.0.1:443,
as in a real cluster. Every namespace holds the "default" ServiceAccount and
the kube-root-ca.crt ConfigMap; pods pass the ServiceAccount admission (the kube-api-access
projected volume) and serviceaccounts/NAME/token issues bound tokens.

Prints "listening on PORT" once it accepts connections. Control endpoints for
tests (no authentication): POST /__control/fail?code=503&count=N[&retryAfter=S][&only=watch],
/__control/stall?seconds=S, /__control/compact, /__control/close-watches;
GET /__control/violations, /__control/requests, /__control/tokens (every token issued),
/__control/watches (the watches open now), /__control/reviews (every TokenReview
and SubjectAccessReview answered).
"""

import argparse
import base64
import bisect
import copy
import datetime
import gzip
import json
import os
import random
import re
import select
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import access  # noqa: E402
import ephemeral  # noqa: E402
import resize  # noqa: E402
import nodeproxy  # noqa: E402
import patch as patches  # noqa: E402
import schema as schemas_mod  # noqa: E402
import streamrelay  # noqa: E402
import tables  # noqa: E402


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# group, version, plural -> kind, namespaced, short names
RESOURCES = {
    ("", "v1", "pods"): ("Pod", True, ["po"]),
    ("", "v1", "nodes"): ("Node", False, ["no"]),
    ("", "v1", "namespaces"): ("Namespace", False, ["ns"]),
    ("", "v1", "events"): ("Event", True, ["ev"]),
    ("", "v1", "configmaps"): ("ConfigMap", True, ["cm"]),
    ("", "v1", "secrets"): ("Secret", True, []),
    ("", "v1", "serviceaccounts"): ("ServiceAccount", True, ["sa"]),
    ("", "v1", "services"): ("Service", True, ["svc"]),
    ("coordination.k8s.io", "v1", "leases"): ("Lease", True, []),
}
STATUS_SUBRESOURCE = {"pods", "nodes", "namespaces"}
# pods/NAME/SUB relayed to the kubelet once it has upgraded the connection
STREAM_SUBRESOURCES = {"exec": "PodExecOptions", "attach": "PodAttachOptions",
                       "portforward": "PodPortForwardOptions"}
NODE_PROXY_PATH = re.compile(r"^/api/v1/nodes/[^/]+/proxy(/|$)")
# group -> plural -> kind of the review APIs (create only, nothing stored)
REVIEWS = {"authentication.k8s.io": {"tokenreviews": "TokenReview"},
           "authorization.k8s.io": {"subjectaccessreviews": "SubjectAccessReview"}}
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# The service cluster IP range (kube-apiserver --service-cluster-ip-range);
# its first address is the "kubernetes" Service's.
SERVICE_CIDR = ("10.96.0.0", 16)
SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, retry_after=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.retry_after = details, retry_after

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            s["details"] = self.details
        return s


def invalid_fields(kind, name, problems):
    """422 Invalid as the real server sends a field.ErrorList: each cause has
    its field and reason apart, so kubectl prints 'The Pod "web" is invalid:
    spec...: Invalid value: ...'."""
    reasons = {"Invalid value": "FieldValueInvalid", "Forbidden": "FieldValueForbidden",
               "Required value": "FieldValueRequired", "Not found": "FieldValueNotFound",
               "Unsupported value": "FieldValueNotSupported"}
    causes = []
    for p in problems:
        field, _, message = p.partition(": ")
        reason = next((r for k, r in reasons.items() if message.startswith(k)), "FieldValueInvalid")
        causes.append({"reason": reason, "message": message, "field": field})
    what = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {what}',
                    {"name": name, "kind": kind, "causes": causes})


def invalid(kind, name, problems):
    """422 Invalid in the real server's words: one problem, or [a, b]."""
    what = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {what}',
                    {"name": name, "kind": kind.lower() + "s",
                     "causes": [{"message": p} for p in problems]})


def not_found(plural, name, group=""):
    qualified = plural if not group else f"{plural}.{group}"
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found',
                    {"name": name, "group": group, "kind": plural})


# ---- selectors ------------------------------------------------------------

def parse_label_selector(text):
    reqs = []
    for part in re.findall(r'[^,(]+(?:\([^)]*\))?[^,]*', text or ""):
        part = part.strip()
        if not part:
            continue
        m = re.match(r'^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$', part)
        if m:
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), values))
            continue
        m = re.match(r'^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$', part)
        if m:
            reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", {m.group(3)}))
            continue
        if part.startswith("!"):
            reqs.append((part[1:].strip(), "!exists", set()))
        else:
            reqs.append((part, "exists", set()))
    return reqs


def labels_match(reqs, labels):
    for key, op, values in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "=" and v not in values:
            return False
        if op == "!=" and has and v in values:
            return False
        if op == "in" and v not in values:
            return False
        if op == "notin" and has and v in values:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


def field_value(obj, path):
    cur = obj
    for p in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    return "" if cur is None else str(cur)


SUPPORTED_FIELDS = {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase",
                    "involvedObject.name", "involvedObject.kind", "involvedObject.namespace",
                    "involvedObject.uid", "reason", "type"}


def parse_field_selector(text):
    reqs = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r'^([\w.]+)\s*(==|=|!=)\s*(.*)$', part)
        if not m or m.group(1) not in SUPPORTED_FIELDS:
            raise ApiError(400, "BadRequest",
                           f'"{part}" is not a known field selector: only "metadata.name", '
                           f'"metadata.namespace", "spec.nodeName" and a few more')
        reqs.append((m.group(1), m.group(2) != "!=", m.group(3)))
    return reqs


def fields_match(reqs, obj):
    return all((field_value(obj, f) == v) == eq for f, eq, v in reqs)


# ---- storage --------------------------------------------------------------

class Store:
    """Objects by (group, plural, namespace, name), a resourceVersion counter and
    the history of changes that watches replay.

    With a state file the objects survive a restart (and a SIGKILL): a snapshot
    plus a journal of the changes since, one JSON line each. Writing the whole
    snapshot on every change made each write cost as much as the store is big,
    which a 100-pod benchmark turned quadratic."""

    def __init__(self, state_file):
        self.lock = threading.Condition()
        self.objects = {}
        self.rv = 1
        self.history = []  # (rv, type, key, object, the object before), rv ascending
        self.compacted = 1
        self.state_file = state_file
        self.journal = None
        self.journal_lines = 0
        self.closed_generation = 0
        if not state_file:
            return
        if os.path.exists(state_file):
            with open(state_file) as f:
                saved = json.load(f)
            self.rv = saved["rv"]
            for entry in saved["objects"]:
                self.objects[tuple(entry["key"])] = entry["object"]
        if os.path.exists(self.journal_file()):
            with open(self.journal_file()) as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        break  # the last line, cut short by a kill
                    key = tuple(entry["key"])
                    if entry["object"] is None:
                        self.objects.pop(key, None)
                    else:
                        self.objects[key] = entry["object"]
                    self.rv = max(self.rv, entry["rv"])
        self.compacted = self.rv  # history is gone after a restart, as etcd compacts
        self.snapshot()

    def journal_file(self):
        return self.state_file + ".journal"

    def snapshot(self):
        """Writes every object to the state file and starts an empty journal."""
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"rv": self.rv, "objects": [{"key": list(k), "object": o}
                                                 for k, o in self.objects.items()]}, f)
        os.replace(tmp, self.state_file)
        if self.journal:
            self.journal.close()
        self.journal = open(self.journal_file(), "w")
        self.journal_lines = 0

    def save(self, key):
        if not self.state_file:
            return
        # A whole snapshot once the journal outgrows the store: O(1) per change
        # on average, and a restart replays a bounded journal.
        if self.journal_lines > max(1000, 2 * len(self.objects)):
            return self.snapshot()
        self.journal.write(json.dumps({"rv": self.rv, "key": list(key),
                                       "object": self.objects.get(key)}) + "\n")
        self.journal.flush()  # into the kernel: a SIGKILL of this process loses nothing
        self.journal_lines += 1

    def next_rv(self):
        self.rv += 1
        return self.rv

    def record(self, kind, key, obj, prev=None):
        self.history.append((self.rv, kind, key, copy.deepcopy(obj), copy.deepcopy(prev)))
        if len(self.history) > 10000:
            dropped = self.history[:5000]
            self.history = self.history[5000:]
            self.compacted = dropped[-1][0]
        self.save(key)
        self.lock.notify_all()

    def changes_after(self, rv):
        """The history entries newer than `rv`, found by bisection: every open
        watch looks on every change, so a scan would be O(history) each time."""
        return self.history[bisect.bisect_right(self.history, rv, key=lambda e: e[0]):]


# ---- the server -----------------------------------------------------------

class Server:
    def __init__(self, args):
        self.args = args
        self.store = Store(args.state)
        self.schemas = schemas_mod.Schemas(args.schemas)
        self.tokens = dict(t.split("=", 1) for t in args.token)
        self.readonly = dict(t.split("=", 1) for t in args.readonly_token)
        self.token_users = access.load_token_file(args.token_auth_file)
        self.policy = access.load_policy(args.authz_policy)
        self.fail = None  # (code, count, retry_after, watches only)
        self.stall = 0.0
        self.violations = []
        self.requests = []
        self.issued_tokens = []
        self.reviews = []  # every TokenReview and SubjectAccessReview answered
        self.open_watches = {}
        self.control = threading.Lock()
        # kube-root-ca.crt: the cluster's CA, which signed both sides' certificates here.
        with open(args.client_ca or args.cert) as f:
            self.ca_pem = f.read()
        for ns in ("default", "kube-node-lease", "kube-system"):
            key = ("", "namespaces", "", ns)
            if key not in self.store.objects:
                with self.store.lock:
                    rv = self.store.next_rv()
                    self.store.objects[key] = self.new_meta(
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                         "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
                        "", rv)
                    self.namespace_contents(ns)
        key = ("", "services", "default", "kubernetes")
        if key not in self.store.objects:
            with self.store.lock:
                svc = {"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "kubernetes",
                                    "labels": {"component": "apiserver",
                                               "provider": "kubernetes"}},
                       "spec": {"clusterIP": service_ip(1),
                                "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                           "targetPort": args.port or 6443}],
                                "sessionAffinity": "None", "type": "ClusterIP"}}
                service_defaults(svc, self.store)
                self.new_meta(svc, "default", self.store.next_rv())
                self.store.objects[key] = svc
                self.store.record("ADDED", key, svc)

    def lookup_token(self, token, reviews=False):
        """{"username", "uid", "groups", "mode"} of a bearer token, or None.
        `reviews`: also the service-account tokens issued (TokenReview knows
        them; the API itself keeps accepting only the tokens it was given)."""
        if token in self.tokens:
            return {"username": self.tokens[token], "uid": "", "groups": [], "mode": "full"}
        if token in self.readonly:
            return {"username": self.readonly[token], "uid": "", "groups": [],
                    "mode": "readonly"}
        if token in self.token_users:
            return {**self.token_users[token], "mode": "policy"}
        if reviews:
            with self.control:
                issued = next((t for t in self.issued_tokens if t["token"] == token), None)
            if issued:
                ns = issued["namespace"]
                return {"username": f'system:serviceaccount:{ns}:{issued["serviceAccount"]}',
                        "uid": "", "groups": ["system:serviceaccounts",
                                              f"system:serviceaccounts:{ns}"],
                        "mode": "policy"}
        return None

    def namespace_contents(self, ns):
        """What the controller manager puts in every namespace: the "default"
        ServiceAccount and the kube-root-ca.crt ConfigMap. Under the store lock."""
        store = self.store
        for plural, obj in (
                ("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                     "metadata": {"name": "default"}}),
                ("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "kube-root-ca.crt"},
                                "data": {"ca.crt": self.ca_pem}})):
            key = ("", plural, ns, obj["metadata"]["name"])
            if key not in store.objects:
                self.new_meta(obj, ns, store.next_rv())
                store.objects[key] = obj
                store.record("ADDED", key, obj)

    def new_meta(self, obj, namespace, rv):
        meta = obj.setdefault("metadata", {})
        if namespace:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta["resourceVersion"] = str(rv)
        if "generation" not in meta and obj.get("kind") not in ("Event", "Lease"):
            meta["generation"] = 1
        return obj


def pod_defaults(pod):
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("securityContext", {})
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        image = c.get("image", "")
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        c.setdefault("resources", {})
    status = pod.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", qos_class(spec))


def service_ip(n):
    """The n-th address of SERVICE_CIDR."""
    base = sum(int(b) << (8 * (3 - i)) for i, b in enumerate(SERVICE_CIDR[0].split(".")))
    a = base + n
    return ".".join(str((a >> s) & 255) for s in (24, 16, 8, 0))


def service_defaults(svc, store):
    """The API server's defaults and cluster IP allocation for a Service, and
    the errors of its validation that tests meet. Under the store lock."""
    name = svc.get("metadata", {}).get("name", "")
    spec = svc.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    ports = spec.get("ports") or []
    if not isinstance(ports, list):
        raise invalid("Service", name, ["spec.ports: Invalid value: must be a list"])
    headless = spec.get("clusterIP") == "None"
    if not ports and not headless:
        raise invalid("Service", name, ["spec.ports: Required value"])
    for i, port in enumerate(ports):
        if not isinstance(port, dict) or not isinstance(port.get("port"), int) \
                or not 1 <= port["port"] <= 65535:
            raise invalid("Service", name, [f"spec.ports[{i}].port: Invalid value: "
                                            f"{port.get('port') if isinstance(port, dict) else port}"
                                            f": must be between 1 and 65535, inclusive"])
        if len(ports) > 1 and not port.get("name"):
            raise invalid("Service", name, [f"spec.ports[{i}].name: Required value"])
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
    taken = {o.get("spec", {}).get("clusterIP") for k, o in store.objects.items()
             if k[1] == "services"}
    ip = spec.get("clusterIP") or ""
    if not ip:
        size = 1 << (32 - SERVICE_CIDR[1])
        ip = next((service_ip(n) for n in range(1, size - 1) if service_ip(n) not in taken), "")
        if not ip:
            raise ApiError(500, "InternalError", "Internal error occurred: failed to allocate a "
                           "serviceIP: range is full")
    elif ip != "None" and ip in taken:
        raise invalid("Service", name, [f'spec.clusterIPs: Invalid value: []string{{"{ip}"}}: '
                                        f"failed to allocate IP {ip}: provided IP is already "
                                        f"allocated"])
    spec["clusterIP"] = ip
    spec["clusterIPs"] = [ip]


def qos_class(spec):
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    any_set, guaranteed = False, True
    for c in containers:
        r = c.get("resources", {})
        for res in ("cpu", "memory"):
            lim = r.get("limits", {}).get(res)
            req = r.get("requests", {}).get(res, lim)
            any_set = any_set or lim is not None or req is not None
            if lim is None or req != lim:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kernelet-test-apiserver"

    def setup(self):
        # Headers and body go out as two writes: with Nagle on, the second
        # waits for the client's delayed ACK, 40 ms per answer. Go's servers,
        # the real API server's among them, set TCP_NODELAY; so does this one.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, fmt, *args):
        if os.environ.get("APISERVER_VERBOSE"):
            sys.stderr.write("apiserver: " + (fmt % args) + "\n")

    @property
    def api(self):
        return self.server.api

    # -- plumbing --

    def send_json(self, code, obj, headers=None):
        body = json.dumps(obj).encode()
        accept_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        extra = dict(headers or {})
        if accept_gzip and len(body) > 128:
            body = gzip.compress(body)
            extra["Content-Encoding"] = "gzip"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_error_status(self, err):
        headers = {}
        if err.retry_after is not None:
            headers["Retry-After"] = str(err.retry_after)
        self.send_json(err.code, err.status(), headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type == "application/vnd.kubernetes.protobuf":
            # Only JSON here; client-go retries such a request as JSON after a 415.
            raise ApiError(415, "UnsupportedMediaType",
                           f'the body of the request was in an unknown format - accepted media '
                           f'types include: application/json, application/yaml')
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {e}")

    def user(self):
        """(user, groups, mode): mode "full" may do anything, "readonly" only
        read, "policy" what --authz-policy allows; (None, [], None) if unknown."""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            found = self.api.lookup_token(auth[7:].strip())
            if found is None:
                return None, [], None
            return found["username"], found["groups"], found["mode"]
        cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
        if cert:
            name, groups = None, []
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        name = v
                    elif k == "organizationName":
                        groups.append(v)
            if name:
                return name, groups, "full"
        return None, [], None

    def authorize(self, user, groups, mode, attrs):
        """403 unless `user` may do `attrs` (verb, group, resource, subresource,
        namespace, name)."""
        if mode == "full":
            return
        if mode == "readonly":
            ok = attrs["verb"] in ("get", "list", "watch")
        else:
            ok, _ = access.allowed(self.api.policy, user, groups, attrs)
        if not ok:
            raise ApiError(403, "Forbidden", access.forbidden_message(user, attrs),
                           {"name": attrs.get("name") or "", "group": attrs.get("group", ""),
                            "kind": attrs.get("resource", "")})

    def handle_any(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path
        if path.startswith("/__control/"):
            return self.control(method, path, query)
        with self.api.control:
            self.api.requests.append({"method": method, "path": path, "query": url.query,
                                      "time": time.time()})
            fail = self.api.fail
            is_watch = query.get("watch") in ("true", "1")
            if fail and (is_watch or not fail[3]):
                code, count, retry_after, only_watch = fail
                self.api.fail = (code, count - 1, retry_after, only_watch) if count > 1 else None
            else:
                fail = None
            stall = self.api.stall
        try:
            if self.headers.get("Content-Length") is None and method in ("POST", "PUT", "PATCH") \
                    and self.headers.get("Transfer-Encoding") == "chunked" \
                    and not NODE_PROXY_PATH.match(path):
                raise ApiError(411, "BadRequest", "chunked request bodies are not supported here")
            if stall:
                time.sleep(stall)
            if fail:
                reasons = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                           504: "Timeout"}
                raise ApiError(fail[0], reasons.get(fail[0], "InternalError"),
                               "injected failure", retry_after=fail[2])
            user, groups, mode = self.user()
            if user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return self.route(method, path, query, user, groups, mode)
        except ApiError as e:
            self.send_error_status(e)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")

    # -- control --

    def control(self, method, path, query):
        api = self.api
        what = path[len("/__control/"):]
        with api.control:
            if what == "fail":
                api.fail = (int(query.get("code", "503")), int(query.get("count", "1")),
                            int(query["retryAfter"]) if "retryAfter" in query else None,
                            query.get("only") == "watch")
            elif what == "stall":
                api.stall = float(query.get("seconds", "0"))
            elif what == "violations":
                return self.send_json(200, api.violations)
            elif what == "requests":
                return self.send_json(200, api.requests)
            elif what == "tokens":
                return self.send_json(200, api.issued_tokens)
            elif what == "reviews":
                return self.send_json(200, api.reviews)
            elif what == "watches":
                return self.send_json(200, list(api.open_watches.values()))
        if what == "compact":
            with api.store.lock:
                api.store.compacted = api.store.rv
                api.store.history = []
        elif what == "close-watches":
            with api.store.lock:
                api.store.closed_generation += 1
                api.store.lock.notify_all()
        self.send_json(200, {"ok": True})

    # -- routing --

    def route(self, method, path, query, user, groups, mode):
        parts = [p for p in path.split("/") if p]
        if parts[:2] in (["apis", "authentication.k8s.io"], ["apis", "authorization.k8s.io"]):
            return self.review(method, parts, user, groups, mode)
        if method == "GET" and parts in ([], ["healthz"], ["readyz"], ["livez"]):
            return self.send_json(200, {"paths": ["/api", "/api/v1", "/apis", "/version"]})
        if method == "GET" and parts == ["version"]:
            return self.send_json(200, {"major": "1", "minor": "35", "gitVersion": "v1.35.0",
                                        "platform": "linux/amd64"})
        if method == "GET" and parts[:1] == ["openapi"]:
            return self.openapi(parts)
        if method == "GET" and parts == ["api"]:
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [
                                            {"clientCIDR": "0.0.0.0/0",
                                             "serverAddress": self.headers.get("Host", "")}]})
        if method == "GET" and parts == ["apis"]:
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}}
                for g in ("coordination.k8s.io", "authentication.k8s.io",
                          "authorization.k8s.io")]})
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest and method == "GET":
            return self.discovery(group, version)
        namespace = None
        # namespaces/NS/RESOURCE..., but namespaces/NAME/status is the namespace's own.
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and
                                                               rest[2] == "status"):
            namespace, rest = rest[1], rest[2:]
        if not rest:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        plural = rest[0]
        if (group, version, plural) not in RESOURCES:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        kind, namespaced, _ = RESOURCES[(group, version, plural)]
        if namespace is not None and not namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        verb = {"GET": "get" if name else ("watch" if query.get("watch") in ("true", "1")
                                           else "list"),
                "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
        attrs = {"verb": verb, "group": group, "resource": plural, "subresource": sub or "",
                 "namespace": namespace or "", "name": name or ""}
        if plural == "nodes" and sub == "proxy" and name:
            self.authorize(user, groups, mode, attrs)
            return self.node_proxy(method, path, name)
        if sub == "token" and plural == "serviceaccounts" and method == "POST":
            if mode == "policy":  # read-only users issued tokens before: they still do
                self.authorize(user, groups, mode, attrs)
            return self.token_request(namespace, name, user)
        if plural == "pods" and sub in STREAM_SUBRESOURCES and method in ("GET", "POST") \
                and len(rest) == 3:
            # kubectl's WebSocket attempt is a GET: the real API server asks
            # for create on it too (AuthorizePodWebsocketUpgradeCreatePermission).
            self.authorize(user, groups, mode, attrs)
            if verb != "create":
                self.authorize(user, groups, mode, dict(attrs, verb="create"))
            return self.pod_stream(sub, namespace, name)
        if plural == "pods" and sub == "ephemeralcontainers" and len(rest) == 3 and \
                method in ("GET", "PUT", "PATCH"):
            self.authorize(user, groups, mode, attrs)
            ctx = (group, version, plural, kind, namespaced, namespace, name, sub, user)
            return self.ephemeral_containers(ctx, method)
        if plural == "pods" and sub == "resize" and len(rest) == 3 and \
                method in ("GET", "PUT", "PATCH"):
            self.authorize(user, groups, mode, attrs)
            ctx = (group, version, plural, kind, namespaced, namespace, name, sub, user)
            return self.pod_resize(ctx, method)
        if plural == "pods" and sub == "log" and method == "GET" and len(rest) == 3:
            self.authorize(user, groups, mode, attrs)
            return self.pod_log(namespace, name, query)
        if sub is not None and (sub != "status" or plural not in STATUS_SUBRESOURCE):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self.authorize(user, groups, mode, attrs)
        ctx = (group, version, plural, kind, namespaced, namespace, name, sub, user)
        if verb == "watch":
            return self.watch(ctx, query)
        if verb == "list":
            return self.list(ctx, query)
        if verb == "get":
            obj = self.get_obj(ctx)
            if "as=Table" in self.headers.get("Accept", ""):  # kubectl get pod NAME
                return self.send_json(200, tables.table(
                    kind, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                    include_object=query.get("includeObject", "Metadata")))
            return self.send_json(200, obj)
        if verb == "create":
            return self.create(ctx, query)
        if verb == "update":
            return self.update(ctx)
        if verb == "patch":
            return self.patch(ctx)
        return self.delete(ctx, query)

    # -- what a kubelet's own server asks: TokenReview, SubjectAccessReview --

    def review(self, method, parts, user, groups, mode):
        group = parts[1]
        if parts[2:3] != ["v1"]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if len(parts) == 3 and method == "GET":
            return self.discovery(group, "v1")
        plural = parts[3] if len(parts) == 4 else None
        if plural not in REVIEWS[group]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method != "POST":
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        # The callers (kubelets) need create on the review: the real API server
        # grants it to the kubelet's user with system:auth-delegator; here full
        # users have it, readonly users do not, token-file users by the policy.
        self.authorize(user, groups, mode, {"verb": "create", "group": group,
                                            "resource": plural, "subresource": "",
                                            "namespace": "", "name": ""})
        body = self.read_body()
        kind = REVIEWS[group][plural]
        if not isinstance(body, dict) or body.get("kind") not in (kind, None):
            raise ApiError(400, "BadRequest", f"the body must be a {kind}")
        if user == self.api.args.validate_agent:
            problems = access.review_violations(kind, body)
            if problems:
                with self.api.control:
                    self.api.violations.extend(problems)
                raise ApiError(422, "Invalid", f'{kind} is invalid: {"; ".join(problems)}')
        if plural == "tokenreviews":
            out = access.token_review(body, lambda t: self.api.lookup_token(t, reviews=True))
        else:
            out = access.subject_access_review(body, self.api.policy)
        with self.api.control:
            self.api.reviews.append(out)
        self.send_json(201, out)

    # -- what the API server proxies to a node's kubelet --

    def kubelet_at(self, node_name):
        """(host, port) of the node's kubelet."""
        with self.api.store.lock:
            node = copy.deepcopy(self.api.store.objects.get(("", "nodes", "", node_name)))
        if node is None:
            raise not_found("nodes", node_name)
        host, port = nodeproxy.node_location(node)
        if not host:
            raise ApiError(500, "", "no preferred addresses found; known addresses: []")
        return host, port

    def connect(self, host, port, method, target, headers, body=b""):
        """A connection to the kubelet with the request sent, and its status
        line and headers; raises BackendError."""
        args = self.api.args
        conn = nodeproxy.KubeletConnection(host, port, args.kubelet_client_cert,
                                           args.kubelet_client_key)
        try:
            return (conn, *conn.request(method, target, headers, body))
        except (nodeproxy.BackendError, OSError) as e:
            conn.close()
            raise nodeproxy.BackendError(str(e))

    def relay_answer(self, conn, status, reason, headers, content_type=None):
        """Sends the kubelet's status and body framing on, then its body as it
        comes; the client's connection closes with it."""
        self.send_response(status, reason or None)
        framing = False
        for k, v in headers:
            lk = k.lower()
            if lk in ("content-length", "transfer-encoding"):
                framing = True
                self.send_header(k, v)
            elif lk == "content-type" and not content_type:
                self.send_header(k, v)
            elif lk in ("content-encoding", "cache-control", "date", "x-content-type-options"):
                self.send_header(k, v)
        if content_type:
            self.send_header("Content-Type", content_type)
        if not framing:
            self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def write(chunk):
            self.wfile.write(chunk)
            self.wfile.flush()
        try:
            conn.relay(write, self.client_gone)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass

    def pod_log(self, namespace, name, query):
        """GET pods/NAME/log: validated and defaulted as the real API server
        does, then streamed from the node's /containerLogs."""
        with self.api.store.lock:
            pod = copy.deepcopy(self.api.store.objects.get(("", "pods", namespace, name)))
        if pod is None:
            raise not_found("pods", name)
        try:
            opts = nodeproxy.parse_log_options(name, query)
            container = nodeproxy.log_container(pod, opts["container"])
        except nodeproxy.LogOptionsError as e:
            raise ApiError(e.code, "Invalid" if e.code == 422 else "BadRequest", e.message)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            # Not scheduled: the real API server answers with an empty log.
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = "/containerLogs/" + "/".join(urllib.parse.quote(p, safe="") for p in
                                              (namespace, name, container))
        params = nodeproxy.kubelet_log_query(opts)
        if params:
            target += "?" + urllib.parse.urlencode(params)
        host, port = self.kubelet_at(node_name)
        try:
            conn, status, reason, headers = self.connect(host, port, "GET", target, [])
        except nodeproxy.BackendError as e:
            raise ApiError(500, "", f'Get "https://{host}:{port}{target}": {e}')
        try:
            if not 200 <= status <= 206:
                chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower()
                              for k, v in headers)
                text = conn.read_all(nodeproxy.MAX_ERROR_BODY, chunked).decode(
                    "utf-8", "replace")
                sys.stderr.write(f"apiserver: kubelet {conn.url_base}{target}: {status} {text}\n")
                why, message = nodeproxy.kubelet_error_status(status, text, "pods/log", name)
                details = {"name": name, "kind": "pods/log"}
                if status == 500 or status == 400:
                    details = None
                raise ApiError(status, why, message, details)
            self.relay_answer(conn, status, reason, headers, content_type="text/plain")
        finally:
            conn.close()

    def pod_stream(self, kind, namespace, name):
        """pods/NAME/exec, attach, portforward: the upgrade goes to the node's
        kubelet with the client's upgrade headers; its answer comes back as
        it is, and after a 101 the bytes go both ways (streamrelay.py)."""
        with self.api.store.lock:
            pod = copy.deepcopy(self.api.store.objects.get(("", "pods", namespace, name)))
        if pod is None:
            raise not_found("pods", name)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query,
                                      keep_blank_values=True)
        try:
            target = streamrelay.kubelet_target(kind, pod, query)
        except streamrelay.StreamError as e:
            raise ApiError(e.code, e.reason, e.message)
        host, port = self.kubelet_at(pod["spec"]["nodeName"])
        headers = streamrelay.upgrade_headers(self.headers)
        args = self.api.args
        try:
            conn = nodeproxy.KubeletConnection(host, port, args.kubelet_client_cert,
                                               args.kubelet_client_key)
        except nodeproxy.BackendError as e:
            raise ApiError(500, "", f"error dialing backend: {e}")
        try:
            try:
                status, reason, answer = conn.request(self.command, target, headers, close=False)
            except (nodeproxy.BackendError, OSError) as e:
                raise ApiError(500, "", f"error dialing backend: {e}")
            self.close_connection = True
            if status != 101:
                # Not upgraded: the kubelet's answer as it came, then the end.
                body = streamrelay.read_body(conn, answer)
                sys.stderr.write(f"apiserver: kubelet {conn.url_base}{target}: {status} "
                                 f"{body[:200]!r}\n")
                return self.send_raw(status, reason, answer, body)
            self.send_raw(status, reason, answer, None)
            pending = streamrelay.drain_buffered(self.connection, self.rfile)
            streamrelay.relay(self.connection, pending, conn.sock, conn.pending)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def send_raw(self, status, reason, headers, body):
        """The kubelet's status line and headers as it sent them (the body's
        length set again when there is one: it was read whole)."""
        lines = [f"HTTP/1.1 {status} {reason}"]
        for k, v in headers:
            if body is not None and k.lower() in ("content-length", "transfer-encoding",
                                                  "connection"):
                continue
            lines.append(f"{k}: {v}")
        if body is not None:
            lines += [f"Content-Length: {len(body)}", "Connection: close"]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        self.wfile.flush()

    def read_chunked(self, limit=16 << 20):
        """A chunked request body (at most `limit` bytes)."""
        body = b""
        while True:
            line = self.rfile.readline(1024)
            try:
                n = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise ApiError(400, "BadRequest", "malformed chunked request body")
            if n == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return body
            if len(body) + n > limit:
                raise ApiError(413, "RequestEntityTooLarge", "request body too large")
            body += self.rfile.read(n)
            self.rfile.readline(16)  # the CRLF after the chunk

    def node_proxy(self, method, path, node_name):
        """nodes/NAME/proxy/PATH: the request, query and body as they came, to
        the node's kubelet at /PATH; its answer, whatever it is, back."""
        prefix = f"/api/v1/nodes/{node_name}/proxy"
        raw = urllib.parse.urlsplit(self.path)
        rest = raw.path[raw.path.find(prefix) + len(prefix):] if prefix in raw.path else "/"
        target = (rest or "/") + ("?" + raw.query if raw.query else "")
        body = b""
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            body = self.rfile.read(n)
        elif self.headers.get("Transfer-Encoding") == "chunked":
            body = self.read_chunked()  # kubectl create --raw sends its body so
        headers = [(k, self.headers[k]) for k in ("Content-Type", "Accept")
                   if self.headers.get(k)]
        host, port = self.kubelet_at(node_name)
        try:
            conn, status, reason, answer_headers = self.connect(host, port, method, target,
                                                                headers, body)
        except nodeproxy.BackendError as e:
            raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: {e}")
        try:
            self.relay_answer(conn, status, reason, answer_headers)
        finally:
            conn.close()

    def discovery(self, group, version):
        gv = f"{group}/{version}" if group else version
        resources = []
        for (g, v, plural), (kind, namespaced, short) in RESOURCES.items():
            if g != group or v != version:
                continue
            verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                     "watch"]
            r = {"name": plural, "singularName": kind.lower(), "namespaced": namespaced,
                 "kind": kind, "verbs": verbs}
            if short:
                r["shortNames"] = short
            if plural == "pods":
                r["categories"] = ["all"]
            resources.append(r)
            if plural in STATUS_SUBRESOURCE:
                resources.append({"name": plural + "/status", "singularName": "",
                                  "namespaced": namespaced, "kind": kind,
                                  "verbs": ["get", "patch", "update"]})
            if plural == "pods":
                resources.append({"name": "pods/log", "singularName": "", "namespaced": True,
                                  "kind": "Pod", "verbs": ["get"]})
                resources.append({"name": "pods/ephemeralcontainers", "singularName": "",
                                  "namespaced": True, "kind": "Pod",
                                  "verbs": ["get", "patch", "update"]})
                resources.append({"name": "pods/resize", "singularName": "",
                                  "namespaced": True, "kind": "Pod",
                                  "verbs": ["get", "patch", "update"]})
            if plural == "pods":
                for sub, options_kind in STREAM_SUBRESOURCES.items():
                    resources.append({"name": f"pods/{sub}", "singularName": "",
                                      "namespaced": True, "kind": options_kind,
                                      "verbs": ["create", "get"]})
            if plural == "nodes":
                resources.append({"name": "nodes/proxy", "singularName": "", "namespaced": False,
                                  "kind": "NodeProxyOptions",
                                  "verbs": ["create", "delete", "get", "patch", "update"]})
        for plural, kind in REVIEWS.get(group, {}).items():
            if version == "v1":
                resources.append({"name": plural, "singularName": kind.lower(),
                                  "namespaced": False, "kind": kind, "verbs": ["create"]})
        if not resources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                             "resources": resources})

    def openapi(self, parts):
        docs = {"api/v1": "api__v1_openapi.json",
                "apis/coordination.k8s.io/v1": "apis__coordination.k8s.io__v1_openapi.json"}
        if parts == ["openapi", "v3"]:
            return self.send_json(200, {"paths": {
                k: {"serverRelativeURL": f"/openapi/v3/{k}?hash=kernelet"}
                for k, f in docs.items() if f in self.api.schemas.documents}})
        key = "/".join(parts[2:])
        doc = docs.get(key)
        if parts[:2] == ["openapi", "v3"] and doc in self.api.schemas.documents:
            body = self.api.schemas.documents[doc]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    # -- verbs --

    def key(self, ctx, name=None):
        group, _, plural, _, namespaced, namespace, obj_name, _, _ = ctx
        return (group, plural, namespace or "" if namespaced else "", name or obj_name)

    def get_obj(self, ctx):
        group, _, plural, _, namespaced, namespace, name, _, _ = ctx
        with self.api.store.lock:
            obj = self.api.store.objects.get(self.key(ctx))
            if obj is None:
                raise not_found(plural, name, group)
            return copy.deepcopy(obj)

    def selected(self, ctx, query):
        group, _, plural, _, namespaced, namespace, _, _, _ = ctx
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"))

        def match(key, obj):
            if key[0] != group or key[1] != plural:
                return False
            if namespace and key[2] != namespace:
                return False
            return labels_match(labels, obj.get("metadata", {}).get("labels") or {}) and \
                fields_match(fields, obj)
        return match

    def list(self, ctx, query):
        group, version, plural, kind, _, _, _, _, _ = ctx
        match = self.selected(ctx, query)
        store = self.api.store
        rv = query.get("resourceVersion", "")
        with store.lock:
            if rv not in ("", "0") and query.get("resourceVersionMatch") == "Exact" and \
                    int(rv) < store.compacted:
                raise ApiError(410, "Expired", f"too old resource version: {rv} ({store.rv})")
            items = sorted(((k, copy.deepcopy(o)) for k, o in store.objects.items() if match(k, o)),
                           key=lambda x: x[0])
            list_rv = store.rv
        cont = query.get("continue")
        start = 0
        if cont:
            try:
                token = json.loads(urllib.parse.unquote(cont))
                start, list_rv = token["start"], token["rv"]
            except (ValueError, KeyError):
                raise ApiError(400, "BadRequest", "continue key is not valid")
        limit = int(query.get("limit") or 0)
        page = items[start:start + limit] if limit else items[start:]
        meta = {"resourceVersion": str(list_rv)}
        if limit and start + limit < len(items):
            meta["continue"] = urllib.parse.quote(json.dumps({"start": start + limit,
                                                               "rv": list_rv}))
            meta["remainingItemCount"] = len(items) - start - limit
        api_version = f"{group}/{version}" if group else version
        objs = []
        for _, o in page:
            o.setdefault("apiVersion", api_version)
            o.setdefault("kind", kind)
            objs.append(o)
        if "as=Table" in self.headers.get("Accept", ""):
            return self.send_json(200, tables.table(kind, objs, meta,
                                                    query.get("includeObject", "Metadata")))
        self.send_json(200, {"kind": kind + "List", "apiVersion": api_version, "metadata": meta,
                             "items": objs})

    def validate(self, ctx, obj, status_only=False):
        """Checks what the agent sends against the official schema (test mode)."""
        group, version, _, kind, _, _, _, _, user = ctx
        if user != self.api.args.validate_agent:
            return
        schema = self.api.schemas.for_kind(group, version, kind)
        if schema is None:
            return
        problems = self.api.schemas.violations(obj, schema, kind, check_required=True)
        if problems:
            with self.api.control:
                self.api.violations.extend(problems)
            raise ApiError(422, "Invalid", f'{kind} is invalid: {"; ".join(problems)}')

    def create(self, ctx, query):
        group, version, plural, kind, namespaced, namespace, name, sub, user = ctx
        obj = self.read_body()
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        self.validate(ctx, obj)
        meta = obj.setdefault("metadata", {})
        if namespaced:
            ns = namespace or meta.get("namespace") or "default"
            if meta.get("namespace") and meta["namespace"] != ns:
                raise ApiError(400, "BadRequest",
                               "the namespace of the provided object does not match the "
                               "namespace sent on the request")
        else:
            ns = ""
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise ApiError(422, "Invalid", f"{kind} is invalid: metadata.name: Required value")
        obj["apiVersion"] = f"{group}/{version}" if group else version
        obj["kind"] = kind
        if kind == "Pod":
            problems = ephemeral.create_errors(obj)
            if problems:
                raise invalid("Pod", meta["name"], problems)
            pod_defaults(obj)
        store = self.api.store
        key = (group, plural, ns, meta["name"])
        with store.lock:
            if kind == "Pod":
                self.admit_service_account(obj, ns)
            if kind == "Service" and key not in store.objects:  # else 409 below
                service_defaults(obj, store)
            if namespaced and ("", "namespaces", "", ns) not in store.objects:
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                               {"name": ns, "kind": "namespaces"})
            if key in store.objects:
                qualified = plural if not group else f"{plural}.{group}"
                raise ApiError(409, "AlreadyExists",
                               f'{qualified} "{meta["name"]}" already exists',
                               {"name": meta["name"], "group": group, "kind": plural})
            rv = store.next_rv()
            meta.pop("resourceVersion", None)
            self.api.new_meta(obj, ns, rv)
            store.objects[key] = obj
            store.record("ADDED", key, obj)
            if kind == "Namespace":
                self.api.namespace_contents(meta["name"])
            out = copy.deepcopy(obj)
        self.send_json(201, out)

    def admit_service_account(self, pod, ns):
        """The ServiceAccount admission plugin: the pod runs as a ServiceAccount
        that must exist, takes its imagePullSecrets when it names none, and
        unless automount is off it gets the kube-api-access projected volume
        mounted in every container. Under the store lock."""
        meta, spec = pod["metadata"], pod["spec"]
        if MIRROR_ANNOTATION in meta.get("annotations", {}):
            return
        name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        spec["serviceAccountName"] = spec["serviceAccount"] = name
        sa = self.api.store.objects.get(("", "serviceaccounts", ns, name))
        if sa is None:
            raise ApiError(403, "Forbidden",
                           f'pods "{meta["name"]}" is forbidden: error looking up service '
                           f'account {ns}/{name}: serviceaccount "{name}" not found',
                           {"name": meta["name"], "kind": "pods"})
        # A pod that names no imagePullSecrets gets its ServiceAccount's: the
        # kubelet only ever sees spec.imagePullSecrets.
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name", "")}
                                        for s in sa["imagePullSecrets"]]
        automount = spec.get("automountServiceAccountToken",
                             sa.get("automountServiceAccountToken", True))
        containers = spec.get("containers", []) + spec.get("initContainers", [])
        if not automount or any(m.get("mountPath") == SA_MOUNT_PATH
                                for c in containers for m in c.get("volumeMounts", [])):
            return
        volume = "kube-api-access-" + "".join(random.choice("bcdfghjklmnpqrstvwxz2456789")
                                              for _ in range(5))
        spec.setdefault("volumes", []).append({"name": volume, "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt",
                               "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                    "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}],
            "defaultMode": 420}})
        for c in containers:
            c.setdefault("volumeMounts", []).append(
                {"name": volume, "readOnly": True, "mountPath": SA_MOUNT_PATH})

    def token_request(self, ns, name, user):
        """POST serviceaccounts/NAME/token: a TokenRequest answered with a
        JWT-shaped token bound to the pod it names."""
        req = self.read_body()
        if not isinstance(req, dict) or req.get("kind") != "TokenRequest":
            raise ApiError(400, "BadRequest", "the body must be a TokenRequest")
        spec = req.get("spec") or {}
        seconds = spec.get("expirationSeconds", 3600)
        if not isinstance(seconds, int) or seconds < 600:
            raise ApiError(422, "Invalid", f'TokenRequest.authentication.k8s.io "{name}" is '
                           f'invalid: spec.expirationSeconds: Invalid value: {seconds}: may not '
                           f'specify a duration less than 10 minutes')
        store = self.api.store
        with store.lock:
            sa = store.objects.get(("", "serviceaccounts", ns, name))
            if sa is None:
                raise not_found("serviceaccounts", name)
            bound = spec.get("boundObjectRef") or {}
            if bound:
                pod = store.objects.get(("", "pods", ns, bound.get("name")))
                if pod is None:
                    raise not_found("pods", bound.get("name"))
                if bound.get("uid") and bound["uid"] != pod["metadata"]["uid"]:
                    raise ApiError(409, "Conflict",
                                   f'the UID in the bound object reference ({bound["uid"]}) '
                                   f'does not match the UID in record. The object might have '
                                   f'been deleted and then recreated')
            sa_uid = sa["metadata"]["uid"]
        if self.api.args.token_ttl:
            seconds = self.api.args.token_ttl  # the server's own maximum, as it may impose
        now = datetime.datetime.now(datetime.timezone.utc)
        expires = now + datetime.timedelta(seconds=seconds)
        claims = {"aud": spec.get("audiences") or ["https://kubernetes.default.svc"],
                  "exp": int(expires.timestamp()), "iat": int(now.timestamp()),
                  "jti": str(uuid.uuid4()), "iss": "https://kubernetes.default.svc",
                  "sub": f"system:serviceaccount:{ns}:{name}",
                  "kubernetes.io": {"namespace": ns,
                                    "serviceaccount": {"name": name, "uid": sa_uid}}}
        if bound:
            claims["kubernetes.io"]["pod"] = {"name": bound.get("name"), "uid": bound.get("uid")}

        def b64(obj):
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
        token = b64({"alg": "RS256", "kid": "test"}) + "." + b64(claims) + "." + \
            b64({"signed-by": "kernelet-test-apiserver"})
        with self.api.control:
            self.api.issued_tokens.append({"namespace": ns, "serviceAccount": name,
                                           "pod": bound.get("name"), "token": token})
        out = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
               "metadata": {"name": name, "namespace": ns,
                            "creationTimestamp": None},
               "spec": {**spec, "expirationSeconds": seconds},
               "status": {"token": token,
                          "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}}
        self.send_json(201, out)

    def write(self, ctx, new, expected_rv=None):
        """Stores `new` over the current object, with optimistic concurrency."""
        group, _, plural, kind, _, _, name, sub, _ = ctx
        store = self.api.store
        key = self.key(ctx)
        with store.lock:
            cur = store.objects.get(key)
            if cur is None:
                raise not_found(plural, name, group)
            if expected_rv and expected_rv != cur["metadata"]["resourceVersion"]:
                qualified = plural if not group else f"{plural}.{group}"
                raise ApiError(409, "Conflict",
                               f'Operation cannot be fulfilled on {qualified} "{name}": the '
                               f'object has been modified; please apply your changes to the '
                               f'latest version and try again',
                               {"name": name, "group": group, "kind": plural})
            merged = copy.deepcopy(cur)
            if sub == "status":
                merged["status"] = new.get("status", {})
            else:
                for k, v in new.items():
                    if k in ("status",) and plural in STATUS_SUBRESOURCE:
                        continue
                    if k == "metadata":
                        keep = {f: cur["metadata"][f] for f in
                                ("uid", "creationTimestamp", "namespace", "name",
                                 "deletionTimestamp", "deletionGracePeriodSeconds")
                                if f in cur["metadata"]}
                        v = dict(v)
                        v.update(keep)
                    merged[k] = v
                if merged.get("spec") != cur.get("spec") and "generation" in cur["metadata"]:
                    merged["metadata"]["generation"] = cur["metadata"]["generation"] + 1
            if merged == cur:
                return copy.deepcopy(cur)
            merged["metadata"]["resourceVersion"] = str(store.next_rv())
            store.objects[key] = merged
            store.record("MODIFIED", key, merged, cur)
            return copy.deepcopy(merged)

    def update(self, ctx):
        obj = self.read_body()
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        self.validate(ctx, obj)
        if obj.get("metadata", {}).get("name") not in (None, ctx[6]):
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        self.check_pod_update(ctx, obj)
        self.send_json(200, self.write(ctx, obj, obj.get("metadata", {}).get("resourceVersion")))

    def check_pod_update(self, ctx, new):
        """The main pods update may not change resources: pods/resize does."""
        if ctx[2] != "pods" or ctx[7] is not None:
            return
        cur = self.get_obj(ctx)
        problems = resize.update_errors(new, cur)
        if problems:
            raise invalid_fields("Pod", ctx[6], problems)

    def patch(self, ctx):
        body = self.read_body()
        cur = self.get_obj(ctx)
        new = self.patched(ctx, cur, body)
        self.validate(ctx, new)
        self.check_pod_update(ctx, new)
        expected = (body or {}).get("metadata", {}).get("resourceVersion") \
            if isinstance(body, dict) else None
        self.send_json(200, self.write(ctx, new, expected))

    def ephemeral_containers(self, ctx, method):
        """GET, PUT or PATCH pods/NAME/ephemeralcontainers: the Pod, of which
        only spec.ephemeralContainers changes (ephemeral.py)."""
        name = ctx[6]
        if method == "GET":
            return self.send_json(200, self.get_obj(ctx))
        body = self.read_body()
        if method == "PUT" and not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        meta = body.get("metadata", {}) if isinstance(body, dict) else {}
        if method == "PUT" and meta.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        given_rv = meta.get("resourceVersion")
        # A patch is applied to the pod as stored, again if a status write
        # came in between (the real server retries a patch on a conflict too).
        for attempt in range(5):
            cur = self.get_obj(ctx)
            wanted = body if method == "PUT" else self.patched(ctx, cur, body)
            new, problems = ephemeral.update(wanted, cur)
            if problems:
                raise invalid("Pod", name, problems)
            self.validate(ctx, new)
            try:
                out = self.write(ctx, new, given_rv or cur["metadata"]["resourceVersion"])
            except ApiError as e:
                if e.code != 409 or given_rv or attempt == 4:
                    raise
                continue
            return self.send_json(200, out)

    def pod_resize(self, ctx, method):
        """GET, PUT or PATCH pods/NAME/resize: the Pod, of which only the
        containers' cpu and memory requests and limits change (resize.py)."""
        name = ctx[6]
        if method == "GET":
            return self.send_json(200, self.get_obj(ctx))
        body = self.read_body()
        if method == "PUT" and not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        meta = body.get("metadata") if isinstance(body, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        if method == "PUT" and meta.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        given_rv = meta.get("resourceVersion")
        for attempt in range(5):
            cur = self.get_obj(ctx)
            wanted = body if method == "PUT" else self.patched(ctx, cur, body)
            new, problems = resize.update(wanted, cur)
            if problems:
                raise invalid_fields("Pod", name, problems)
            try:
                out = self.write(ctx, new, given_rv or cur["metadata"]["resourceVersion"])
            except ApiError as e:
                if e.code != 409 or given_rv or attempt == 4:
                    raise
                continue
            return self.send_json(200, out)

    def patched(self, ctx, cur, body):
        """`cur` with the request's patch `body` applied, by its Content-Type."""
        group, version, _, kind, _, _, _, _, _ = ctx
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        schema = self.api.schemas.for_kind(group, version, kind)
        try:
            if content_type == "application/strategic-merge-patch+json":
                if schema is None and group:
                    raise ApiError(415, "UnsupportedMediaType",
                                   "strategic merge patch is not supported for " + kind)
                new = patches.strategic_merge(self.api.schemas, schema, cur, body)
            elif content_type == "application/merge-patch+json":
                new = patches.json_merge(cur, body)
            elif content_type == "application/json-patch+json":
                new = patches.json_patch(cur, body)
            else:
                raise ApiError(415, "UnsupportedMediaType",
                               f'the body of the request was in an unknown format - accepted '
                               f'media types include: application/json-patch+json, '
                               f'application/merge-patch+json, '
                               f'application/strategic-merge-patch+json')
        except patches.PatchError as e:
            raise ApiError(422, "Invalid", str(e))
        # The uid in a patch is a precondition (the kubelet's guard).
        patch_uid = (body or {}).get("metadata", {}).get("uid") if isinstance(body, dict) else None
        if patch_uid and patch_uid != cur["metadata"]["uid"]:
            raise ApiError(409, "Conflict",
                           f'Precondition failed: UID in precondition: {patch_uid}, UID in object '
                           f'meta: {cur["metadata"]["uid"]}')
        return new

    def delete(self, ctx, query):
        group, _, plural, kind, _, _, name, _, _ = ctx
        opts = self.read_body() or {}
        grace = opts.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        pre = opts.get("preconditions") or {}
        store = self.api.store
        key = self.key(ctx)
        with store.lock:
            cur = store.objects.get(key)
            if cur is None:
                raise not_found(plural, name, group)
            if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
                raise ApiError(409, "Conflict",
                               f'Precondition failed: UID in precondition: {pre["uid"]}, UID in '
                               f'object meta: {cur["metadata"]["uid"]}')
            if pre.get("resourceVersion") and pre["resourceVersion"] != \
                    cur["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "Precondition failed: resourceVersion")
            if kind == "Pod":
                if grace is None:
                    grace = cur.get("spec", {}).get("terminationGracePeriodSeconds", 30)
                grace = int(grace)
                bound = bool(cur.get("spec", {}).get("nodeName"))
                phase = cur.get("status", {}).get("phase")
                if bound and grace > 0 and phase not in ("Succeeded", "Failed"):
                    before = copy.deepcopy(cur)
                    meta = cur["metadata"]
                    if "deletionTimestamp" not in meta or grace < meta.get(
                            "deletionGracePeriodSeconds", grace + 1):
                        deadline = datetime.datetime.now(datetime.timezone.utc) + \
                            datetime.timedelta(seconds=grace)
                        meta["deletionTimestamp"] = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
                        meta["deletionGracePeriodSeconds"] = grace
                        meta["resourceVersion"] = str(store.next_rv())
                        store.record("MODIFIED", key, cur, before)
                    return self.send_json(200, copy.deepcopy(cur))
            del store.objects[key]
            before = copy.deepcopy(cur)
            cur["metadata"]["resourceVersion"] = str(store.next_rv())
            store.record("DELETED", key, cur, before)
        self.send_json(200, cur)

    # -- watch --

    def watch(self, ctx, query):
        store = self.api.store
        match = self.selected(ctx, query)
        group, version, plural, kind, _, _, _, _, _ = ctx
        api_version = f"{group}/{version}" if group else version
        rv = query.get("resourceVersion", "")
        streaming = query.get("sendInitialEvents") == "true"
        bookmarks = query.get("allowWatchBookmarks") == "true"
        as_table = "as=Table" in self.headers.get("Accept", "")
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.time() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def event(event_type, obj):
            o = copy.deepcopy(obj)
            o.setdefault("apiVersion", api_version)
            o.setdefault("kind", kind)
            if as_table and event_type in ("ADDED", "MODIFIED", "DELETED"):
                o = tables.table(kind, [o], {"resourceVersion": o["metadata"]["resourceVersion"]},
                                 include_object=query.get("includeObject", "Metadata"))
            return (event_type, o)

        def bookmark(at, initial_end=False):
            meta = {"resourceVersion": str(at)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return ("BOOKMARK", {"kind": kind, "apiVersion": api_version, "metadata": meta})

        def send(events):
            for event_type, o in events:
                line = json.dumps({"type": event_type, "object": o}).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()

        watch_id = object()
        with self.api.control:
            self.api.open_watches[watch_id] = {"path": self.path.split("?")[0],
                                               "query": urllib.parse.urlsplit(self.path).query}
        try:
            # Events are gathered under the store's lock and written without it,
            # so a slow watcher holds nobody up.
            with store.lock:
                generation = store.closed_generation
                out = []
                if streaming or rv in ("", "0"):
                    sent = store.rv
                    for k, o in sorted(store.objects.items()):
                        if match(k, o):
                            out.append(event("ADDED", o))
                    if streaming:
                        out.append(bookmark(sent, True))
                else:
                    sent = int(rv)
                    if sent < store.compacted:
                        out.append(("ERROR", ApiError(410, "Expired",
                                                      f"too old resource version: {sent} "
                                                      f"({store.rv})").status()))
                        sent = None
            send(out)
            if sent is None:
                return self.end_chunks()
            last_bookmark = time.time()
            while time.time() < deadline:
                with store.lock:
                    if store.closed_generation != generation:
                        break
                    out = []
                    for _, event_type, k, o, prev in store.changes_after(sent):
                        now_in = match(k, o)
                        was_in = prev is not None and match(k, prev)
                        if event_type == "DELETED":
                            if was_in or now_in:
                                out.append(event("DELETED", o))
                        elif now_in:
                            out.append(event("MODIFIED" if was_in else "ADDED", o))
                        elif was_in:
                            out.append(event("DELETED", o))  # it left the selection
                    sent = store.rv
                    if bookmarks and time.time() - last_bookmark >= self.api.args.bookmark_seconds:
                        out.append(bookmark(store.rv))
                        last_bookmark = time.time()
                    if not out:
                        store.lock.wait(timeout=min(0.5, max(0.0, deadline - time.time())))
                send(out)
                if self.client_gone():
                    self.close_connection = True
                    return
            self.end_chunks()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            with self.api.control:
                del self.api.open_watches[watch_id]

    def client_gone(self):
        """A watching client sends nothing: a readable socket means it closed."""
        if not select.select([self.connection], [], [], 0)[0]:
            return False
        try:
            return self.connection.recv(1) == b""
        except ssl.SSLWantReadError:
            return False

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True


class ThreadingServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A node opens a watch per ConfigMap and Secret at once: a backlog of 5
    # would drop their SYNs and hold each up for a retransmit (1 s and more).
    request_queue_size = 256


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca")
    p.add_argument("--token", action="append", default=[])
    p.add_argument("--readonly-token", action="append", default=[])
    p.add_argument("--schemas")
    p.add_argument("--validate-agent", default="")
    p.add_argument("--state")
    p.add_argument("--bookmark-seconds", type=float, default=60)
    p.add_argument("--token-ttl", type=int, default=0,
                   help="lifetime of every issued service-account token (default: as asked)")
    p.add_argument("--token-auth-file", help='CSV: token,user,uid,"group1,group2"')
    p.add_argument("--authz-policy", help="JSON policy for --token-auth-file users and "
                                          "SubjectAccessReviews (access.py)")
    p.add_argument("--kubelet-client-cert", help="what the server presents to kubelets")
    p.add_argument("--kubelet-client-key")
    args = p.parse_args()
    try:
        access.load_policy(args.authz_policy)
        access.load_token_file(args.token_auth_file)
    except (OSError, access.PolicyError) as e:
        sys.exit(f"apiserver: {e}")
    httpd = ThreadingServer(("127.0.0.1", args.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.load_verify_locations(args.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.api = Server(args)
    print(f"listening on {httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
