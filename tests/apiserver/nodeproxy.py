"""What the API server does with a node's kubelet: finds it (the Node's
InternalIP and status.daemonEndpoints.kubeletEndpoint.Port), connects with its
kubelet client certificate (the kubelet's serving certificate is not verified,
as the real API server without --kubelet-certificate-authority), and relays the
answer as it comes: `kubectl logs -f` must see each line when the kubelet sends
it and end when the kubelet ends.

Also the pods/log subresource's options (PodLogOptions: parsed and validated
as the real API server does) and how it words a kubelet's error answer (its
GenericHttpResponseChecker)."""

import datetime
import select
import socket
import ssl

DEFAULT_KUBELET_PORT = 10250
ADDRESS_ORDER = ("InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS")
MAX_HEAD = 64 * 1024
MAX_ERROR_BODY = 50000  # the real checker reads at most this much of an error body


class BackendError(Exception):
    """The kubelet could not be reached: a Go-worded transport error."""


def node_location(node):
    """(host, port) of a Node's kubelet."""
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    host = None
    for kind in ADDRESS_ORDER:
        host = next((a.get("address") for a in addresses if a.get("type") == kind), None)
        if host:
            break
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or \
        DEFAULT_KUBELET_PORT
    return host, int(port)


# ---- PodLogOptions ----------------------------------------------------------

class LogOptionsError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


BOOL_OPTIONS = ("follow", "previous", "timestamps", "insecureSkipTLSVerifyBackend")
INT_OPTIONS = ("sinceSeconds", "tailLines", "limitBytes")
LOG_STREAMS = ("All", "Stdout", "Stderr")


def _parse_bool(name, value):
    # Go's strconv.ParseBool, which the query conversion uses.
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False", ""):
        return False
    raise LogOptionsError(400, f'strconv.ParseBool: parsing "{value}": invalid syntax')


def _parse_int(name, value):
    try:
        n = int(value, 10)
    except ValueError:
        raise LogOptionsError(400, f'strconv.ParseInt: parsing "{value}": invalid syntax')
    if not -(1 << 63) <= n < (1 << 63):
        raise LogOptionsError(400, f'strconv.ParseInt: parsing "{value}": value out of range')
    return n


def _parse_time(value):
    try:
        return datetime.datetime.strptime(value.replace("Z", "+00:00"), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        raise LogOptionsError(400, f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": '
                                   f'cannot parse "{value}" as RFC3339')


def parse_log_options(pod_name, query):
    """PodLogOptions from the query, validated as the real API server does
    (ValidatePodLogOptions: a 422 naming the field)."""
    opts = {"container": query.get("container", "")}
    for name in BOOL_OPTIONS:
        if name in query:
            opts[name] = _parse_bool(name, query[name])
    for name in INT_OPTIONS:
        if name in query and query[name] != "":
            opts[name] = _parse_int(name, query[name])
    if query.get("sinceTime"):
        opts["sinceTime"] = _parse_time(query["sinceTime"])
    if query.get("stream"):
        opts["stream"] = query["stream"]
    errors = []
    if opts.get("tailLines") is not None and opts["tailLines"] < 0:
        errors.append(f'tailLines: Invalid value: {opts["tailLines"]}: must be greater than or '
                      f'equal to 0')
    if opts.get("limitBytes") is not None and opts["limitBytes"] < 1:
        errors.append(f'limitBytes: Invalid value: {opts["limitBytes"]}: must be greater than 0')
    if "sinceSeconds" in opts and "sinceTime" in opts:
        errors.append(": Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
    elif opts.get("sinceSeconds") is not None and opts["sinceSeconds"] < 1:
        errors.append(f'sinceSeconds: Invalid value: {opts["sinceSeconds"]}: must be greater '
                      f'than 0')
    if "stream" in opts and opts["stream"] not in LOG_STREAMS:
        errors.append(f'stream: Unsupported value: "{opts["stream"]}": supported values: '
                      f'"All", "Stderr", "Stdout"')
    if errors:
        joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        raise LogOptionsError(422, f'PodLogOptions "{pod_name}" is invalid: {joined}')
    return opts


def log_container(pod, container):
    """The container a log request means, defaulted as the real API server
    does (LogLocation); raises LogOptionsError(400) with its words."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    containers = [c.get("name") for c in spec.get("containers") or []]
    inits = [c.get("name") for c in spec.get("initContainers") or []]
    ephemeral = [c.get("name") for c in spec.get("ephemeralContainers") or []]
    if not container:
        if len(containers) == 1:
            return containers[0]
        if not containers:
            raise LogOptionsError(400, f"a container name must be specified for pod {name}")
        msg = f"a container name must be specified for pod {name}, choose one of: " \
              f"[{' '.join(containers)}]"
        if inits:
            msg += f" or one of the init containers: [{' '.join(inits)}]"
        raise LogOptionsError(400, msg)
    if container not in containers + inits + ephemeral:
        raise LogOptionsError(400, f"container {container} is not valid for pod {name}")
    return container


def kubelet_log_query(opts):
    """The query the real API server sends to containerLogs (set options only)."""
    params = []
    for name in ("follow", "previous", "timestamps"):
        if opts.get(name):
            params.append((name, "true"))
    if opts.get("sinceSeconds") is not None:
        params.append(("sinceSeconds", str(opts["sinceSeconds"])))
    if opts.get("sinceTime") is not None:
        t = opts["sinceTime"].astimezone(datetime.timezone.utc)
        params.append(("sinceTime", t.strftime("%Y-%m-%dT%H:%M:%SZ")))
    if opts.get("tailLines") is not None:
        params.append(("tailLines", str(opts["tailLines"])))
    if opts.get("limitBytes") is not None:
        params.append(("limitBytes", str(opts["limitBytes"])))
    if opts.get("stream"):
        params.append(("stream", opts["stream"]))
    return params


REASONS = {
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    406: ("NotAcceptable", "the server was unable to respond with a content type that the "
                           "client supports"),
    409: ("Conflict", "the server reported a conflict"),
    415: ("UnsupportedMediaType", "the server was unable to respond with a content type that "
                                  "the client supports"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to "
                             "try again later"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted, but may "
                    "still be processing the request"),
}


def kubelet_error_status(code, body_text, resource, name):
    """(reason, message) for a kubelet's non-2xx answer, as the real API
    server's GenericHttpResponseChecker turns it into a Status."""
    if code == 500:
        return "InternalError", f"Internal error occurred: {body_text}"
    if code == 400:
        return "BadRequest", body_text
    if code == 403:
        reason, message = "Forbidden", body_text
    else:
        reason, message = REASONS.get(
            code, ("", f"the server responded with the status code {code} but did not return "
                       f"more information"))
    return reason, f"{message} ( {resource} {name})"


# ---- the connection ---------------------------------------------------------

class KubeletConnection:
    """One request to a kubelet over TLS with the API server's client
    certificate; `Connection: close`, so the body ends where the stream ends."""

    def __init__(self, host, port, cert, key, timeout=10):
        self.url_base = f"https://{host}:{port}"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(cert, key)
        try:
            raw = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise BackendError(f"dial tcp {host}:{port}: {_go_errno(e)}")
        try:
            self.sock = ctx.wrap_socket(raw)
        except (OSError, ssl.SSLError) as e:
            raw.close()
            raise BackendError(f"remote error: tls: {e}")
        self.sock.settimeout(None)
        self.pending = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def request(self, method, target, headers, body=b"", close=True):
        """Sends the request; returns (status, reason, [(header, value)]).
        `close=False`: no `Connection: close` (an upgrade brings its own)."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.url_base[8:]}",
                 "User-Agent: kernelet-test-apiserver"]
        if close:
            lines.insert(2, "Connection: close")
        for k, v in headers:
            lines.append(f"{k}: {v}")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BackendError("EOF before the kubelet's response headers")
            data += chunk
            if len(data) > MAX_HEAD:
                raise BackendError("the kubelet's response headers are too long")
        head, self.pending = data.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise BackendError(f"malformed HTTP response {status_line!r}")
        headers = []
        for h in header_lines:
            k, _, v = h.partition(":")
            headers.append((k.strip(), v.strip()))
        return int(parts[1]), parts[2] if len(parts) > 2 else "", headers

    def read_all(self, limit, chunked):
        """The rest of the body (error answers), de-chunked, at most `limit` bytes."""
        data = self.pending
        self.pending = b""
        while len(data) < limit + MAX_HEAD:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        if chunked:
            data = dechunk(data)
        return data[:limit]

    def relay(self, write, client_gone):
        """Copies the body's bytes (framing and all) to `write` as they come,
        until the kubelet closes; stops early when `client_gone()`."""
        if self.pending:
            write(self.pending)
            self.pending = b""
        while True:
            if not self.sock.pending():
                ready, _, _ = select.select([self.sock], [], [], 1.0)
                if not ready:
                    if client_gone():
                        return
                    continue
            try:
                chunk = self.sock.recv(65536)
            except ssl.SSLWantReadError:
                continue
            if not chunk:
                return
            write(chunk)


def dechunk(data):
    out = b""
    while data:
        line, sep, rest = data.partition(b"\r\n")
        if not sep:
            break
        try:
            n = int(line.split(b";")[0], 16)
        except ValueError:
            break
        if n == 0:
            break
        out += rest[:n]
        data = rest[n + 2:]
    return out


def _go_errno(e):
    if isinstance(e, ConnectionRefusedError):
        return "connect: connection refused"
    if isinstance(e, socket.timeout):
        return "i/o timeout"
    return f"connect: {e.strerror or e}"
