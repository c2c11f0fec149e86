#include "agent/server/router.h"

#include <map>

#include "agent/model/pod_names.h"

namespace kernelet::agent::server {
namespace {

std::unexpected<RouteError> bad(std::string message) {
  return std::unexpected(RouteError{400, std::move(message)});
}

// A segment shown in an error: bounded, so a 1 MiB path does not come back.
std::string shown(std::string_view s) {
  return s.size() > 64 ? std::string(s.substr(0, 64)) + "..." : std::string(s);
}

std::expected<std::vector<std::string>, RouteError> splitPath(std::string_view raw) {
  if (raw.empty() || raw.front() != '/') {
    return bad("invalid path \"" + shown(raw) + "\": must start with /");
  }
  std::vector<std::string> out;
  if (raw == "/") {
    return out;
  }
  raw.remove_prefix(1);
  while (true) {
    size_t slash = raw.find('/');
    std::string_view seg = raw.substr(0, slash);
    if (seg.empty()) {
      return bad("invalid path: empty path segment");
    }
    auto decoded = percentDecode(seg, false);
    if (!decoded) {
      return bad("invalid path segment \"" + shown(seg) + "\": " + decoded.error().detail);
    }
    if (decoded->find('/') != std::string::npos) {
      return bad("invalid path segment \"" + shown(seg) + "\": an encoded '/' is not allowed");
    }
    if (decoded->find('\0') != std::string::npos) {
      return bad("invalid path segment \"" + shown(seg) + "\": NUL is not allowed");
    }
    if (!isValidUtf8(*decoded)) {
      return bad("invalid path segment \"" + shown(seg) + "\": not valid UTF-8");
    }
    if (*decoded == "." || *decoded == "..") {
      return bad("invalid path segment \"" + shown(seg) + "\": \".\" and \"..\" are not allowed");
    }
    out.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) {
      break;
    }
    raw.remove_prefix(slash + 1);
  }
  return out;
}

bool validUid(const std::string& s) {
  if (s.empty() || s.size() > 128 || s.find("..") != std::string::npos) {
    return false;
  }
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// NS, POD, [UID,] CONTAINER (or NS, POD, [UID] with no container), checked.
std::expected<std::vector<std::string>, RouteError> podParams(const std::vector<std::string>& segs,
                                                              bool container) {
  std::vector<std::string> p(segs.begin() + 1, segs.end());
  size_t min = container ? 3 : 2;
  if (p.size() < min || p.size() > min + 1) {
    return std::unexpected(RouteError{404, "404 page not found"});
  }
  if (!isDnsLabel(p[0])) {
    return bad("invalid namespace \"" + shown(p[0]) + "\": must be a DNS label");
  }
  if (!isDnsSubdomain(p[1])) {
    return bad("invalid pod name \"" + shown(p[1]) + "\": must be a DNS subdomain");
  }
  if (p.size() > min && !validUid(p[2])) {
    return bad("invalid pod uid \"" + shown(p[2]) + "\"");
  }
  if (container && !isDnsLabel(p.back())) {
    return bad("invalid container name \"" + shown(p.back()) + "\": must be a DNS label");
  }
  return p;
}

bool isGetOrHead(std::string_view method) { return method == "GET" || method == "HEAD"; }

}  // namespace

bool isValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) {
      return false;
    }
    uint32_t cp = len == 1 ? c : c & (0xff >> (len + 1));
    for (size_t k = 1; k < len; k++) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string verbFor(std::string_view method) {
  static const std::map<std::string_view, std::string> verbs = {
      {"GET", "get"},    {"HEAD", "get"},    {"POST", "create"},
      {"PUT", "update"}, {"PATCH", "patch"}, {"DELETE", "delete"},
  };
  auto it = verbs.find(method);
  return it == verbs.end() ? std::string() : it->second;
}

std::expected<Route, RouteError> route(std::string_view method, std::string_view target) {
  std::string verb = verbFor(method);
  if (verb.empty()) {
    return std::unexpected(RouteError{405, "method " + shown(method) + " is not allowed"});
  }
  size_t q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  std::string_view raw_query = q == std::string_view::npos ? "" : target.substr(q + 1);
  if (size_t hash = raw_query.find('#'); hash != std::string_view::npos) {
    raw_query = raw_query.substr(0, hash);
  }
  auto segs = splitPath(raw_path);
  if (!segs) {
    return std::unexpected(segs.error());
  }
  Route r;
  for (const auto& s : *segs) {
    r.path += "/" + s;
  }
  if (r.path.empty()) {
    r.path = "/";
  }
  auto query = Query::parse(raw_query);
  if (!query) {
    return bad("invalid query: " + query.error().detail);
  }
  r.query = std::move(*query);
  r.access = {verb, {"proxy"}};
  const std::string first = segs->empty() ? "" : segs->front();
  const size_t n = segs->size();

  // Paths that only read: GET or HEAD, else 405 (after the path is known good).
  auto readOnly = [&](Endpoint e, std::vector<std::string> subresources) {
    r.endpoint = e;
    r.access.subresources = std::move(subresources);
  };
  if (first == "healthz" && n == 1) {
    readOnly(Endpoint::kHealthz, {"healthz", "proxy"});
  } else if (first == "pods" && n == 1) {
    readOnly(Endpoint::kPods, {"pods", "proxy"});
  } else if (first == "configz" && n == 1) {
    readOnly(Endpoint::kConfigz, {"configz", "proxy"});
  } else if (first == "stats") {
    r.access.subresources = {"stats"};
    if (n == 2 && (*segs)[1] == "summary") {
      r.endpoint = Endpoint::kStatsSummary;
    }
  } else if (first == "metrics") {
    r.access.subresources = {"metrics"};
    if (n == 1) {
      r.endpoint = Endpoint::kMetrics;
    } else if (n == 2 && (*segs)[1] == "resource") {
      r.endpoint = Endpoint::kMetricsResource;
    } else if (n == 2 && (*segs)[1] == "cadvisor") {
      r.endpoint = Endpoint::kMetricsCadvisor;
    } else if (n == 2 && (*segs)[1] == "probes") {
      r.endpoint = Endpoint::kMetricsProbes;
    }
  } else if (first == "logs") {
    r.access.subresources = {"log"};  // the node's log files: not served (404)
  } else if (first == "spec") {
    r.access.subresources = {"spec"};  // cadvisor's machine info: not served (404)
  } else if (first == "containerLogs") {
    auto p = podParams(*segs, true);
    if (!p) {
      return std::unexpected(p.error());
    }
    if (p->size() != 3) {
      return std::unexpected(RouteError{404, "404 page not found"});
    }
    r.endpoint = Endpoint::kContainerLogs;
    r.params = std::move(*p);
  } else if (first == "exec" || first == "attach" || first == "run" || first == "portForward") {
    // Whatever the method (a WebSocket upgrade is a GET): running something
    // in a container is "create".
    r.access.verb = "create";
    auto p = podParams(*segs, first != "portForward");
    if (!p) {
      return std::unexpected(p.error());
    }
    r.params = std::move(*p);
    r.endpoint = first == "exec"     ? Endpoint::kExec
                 : first == "attach" ? Endpoint::kAttach
                 : first == "run"    ? Endpoint::kRun
                                     : Endpoint::kPortForward;
    bool allowed = first == "run" ? method == "POST" : (method == "GET" || method == "POST");
    if (!allowed) {
      return std::unexpected(
          RouteError{405, "method " + shown(method) + " is not allowed on /" + first});
    }
    return r;
  }
  bool reads = r.endpoint != Endpoint::kNotFound;
  if (reads && !isGetOrHead(method)) {
    return std::unexpected(
        RouteError{405, "method " + shown(method) + " is not allowed on " + shown(r.path)});
  }
  return r;
}

}  // namespace kernelet::agent::server
