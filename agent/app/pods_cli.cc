#include "agent/app/pods_cli.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <string_view>
#include <vector>

#include "agent/logs/cri_lines.h"
#include "agent/logs/log_options.h"
#include "agent/logs/log_stream.h"
#include "agent/logs/log_target.h"
#include "agent/logs/log_time.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;
using Kind = ContainerState::Kind;

time_t parseTime(const std::string& rfc3339) {
  tm t{};
  if (::strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%SZ", &t) == nullptr) {
    return 0;
  }
  return ::timegm(&t);
}

std::vector<PodSummary> readPods(const std::string& root_dir, std::ostream& err) {
  std::vector<PodSummary> pods;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_dir + "/pods", ec)) {
    std::string file = e.path().string() + "/status.json";
    auto text = readFile(file);
    if (!text) {
      continue;  // a pod being set up or removed
    }
    auto p = parsePodJson(*text, file);
    if (!p) {
      err << "kernelet pods: " << p.error().message() << "\n";
      continue;
    }
    pods.push_back(std::move(*p));
  }
  std::sort(pods.begin(), pods.end(), [](const auto& a, const auto& b) {
    return std::tie(a.namespace_, a.name) < std::tie(b.namespace_, b.name);
  });
  return pods;
}

std::string exitText(const ContainerState& s, const char* prefix) {
  if (!s.reason.empty()) {
    return prefix + s.reason;
  }
  return std::string(prefix) + (s.signal != 0 ? "Signal:" + std::to_string(s.signal)
                                              : "ExitCode:" + std::to_string(s.exit_code));
}

}  // namespace

std::string humanAge(int64_t s) {
  if (s < 0) {
    s = 0;
  }
  if (s < 120) {
    return std::to_string(s) + "s";
  }
  int64_t m = s / 60;
  if (m < 10) {
    return std::to_string(m) + "m" + (s % 60 != 0 ? std::to_string(s % 60) + "s" : "");
  }
  if (m < 180) {
    return std::to_string(m) + "m";
  }
  int64_t h = m / 60;
  if (h < 48) {
    return std::to_string(h) + "h";
  }
  return std::to_string(h / 24) + "d";
}

std::string displayStatus(const PodSummary& p) {
  std::string reason = !p.status.reason.empty() ? p.status.reason : p.status.phase;
  const auto& init = p.status.init_container_statuses;
  for (size_t i = 0; i < init.size(); i++) {
    const auto& c = init[i];
    if (c.state.kind == Kind::kTerminated && c.state.exit_code == 0) {
      continue;
    }
    if (c.started.value_or(false) && c.state.kind == Kind::kRunning) {
      continue;  // a sidecar that is up does not hold the pod in Init
    }
    if (c.state.kind == Kind::kTerminated) {
      return exitText(c.state, "Init:");
    }
    if (c.state.kind == Kind::kWaiting && !c.state.reason.empty() &&
        c.state.reason != "PodInitializing") {
      return "Init:" + c.state.reason;
    }
    return "Init:" + std::to_string(i) + "/" + std::to_string(init.size());
  }
  bool running = false;
  for (auto it = p.status.container_statuses.rbegin(); it != p.status.container_statuses.rend();
       ++it) {
    const auto& c = *it;
    if (c.state.kind == Kind::kWaiting && !c.state.reason.empty()) {
      reason = c.state.reason;
    } else if (c.state.kind == Kind::kTerminated) {
      reason = exitText(c.state, "");
    } else if (c.state.kind == Kind::kRunning && c.ready) {
      running = true;
    }
  }
  if (reason == "Completed" && running) {
    reason = "Running";
  }
  return reason;
}

int listPods(const std::string& root_dir, std::ostream& out, std::ostream& err, time_t now) {
  std::vector<PodSummary> pods = readPods(root_dir, err);
  if (pods.empty()) {
    err << "No resources found.\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP"}};
  for (const auto& p : pods) {
    int ready = 0, restarts = 0;
    for (const auto& c : p.status.container_statuses) {
      ready += c.ready ? 1 : 0;
      restarts += c.restart_count;
    }
    for (const auto& c : p.status.init_container_statuses) {
      restarts += c.restart_count;
    }
    rows.push_back({p.namespace_, p.name,
                    std::to_string(ready) + "/" + std::to_string(p.containers), displayStatus(p),
                    std::to_string(restarts), humanAge(now - parseTime(p.created)),
                    p.status.pod_ip.empty() ? "<none>" : p.status.pod_ip});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); i++) {
      width[i] = std::max(width[i], r[i].size());
    }
  }
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); i++) {
      int w = i + 1 < r.size() ? static_cast<int>(width[i] + 3) : 0;
      out << std::left << std::setw(w) << r[i];
    }
    out << "\n";
  }
  return 0;
}

std::string criLogMessages(const std::string& cri_log) { return logs::criLogMessages(cri_log); }

namespace {

// A Go time.Duration as kubectl's --since takes it ("300ms", "1.5h", "2h45m"):
// nanoseconds, or nullopt.
std::optional<int64_t> parseGoDuration(std::string_view s) {
  static const std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1},  {"us", 1e3}, {"\u00b5s", 1e3}, {"ms", 1e6},
      {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  if (s == "0") {
    return 0;
  }
  double total = 0;
  bool any = false;
  while (!s.empty()) {
    size_t n = 0;
    while (n < s.size() && ((s[n] >= '0' && s[n] <= '9') || s[n] == '.')) {
      n++;
    }
    if (n == 0 || s.substr(0, n) == ".") {
      return std::nullopt;
    }
    double v = std::strtod(std::string(s.substr(0, n)).c_str(), nullptr);
    s.remove_prefix(n);
    size_t u = 0;
    while (u < s.size() && !((s[u] >= '0' && s[u] <= '9') || s[u] == '.')) {
      u++;
    }
    std::string_view unit = s.substr(0, u);
    auto it = std::find_if(std::begin(kUnits), std::end(kUnits),
                           [&](const auto& k) { return k.first == unit; });
    if (it == std::end(kUnits)) {
      return std::nullopt;
    }
    total += v * it->second;
    s.remove_prefix(u);
    any = true;
  }
  if (!any || total > 9.2e18) {
    return std::nullopt;
  }
  return static_cast<int64_t>(total);
}

int64_t nowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// kubectl's checks of its flags, then the API's (logs::validateLogOptions).
Result<logs::LogOptions> logOptions(const LogsRequest& req) {
  logs::LogOptions o{.follow = req.follow, .previous = req.previous, .timestamps = req.timestamps};
  if (req.tail < -1) {
    return makeError("--tail must be greater than or equal to -1", "", "");
  }
  if (req.tail >= 0) {
    o.tail_lines = req.tail;
  }
  if (req.limit_bytes < 0) {
    return makeError("--limit-bytes must be greater than 0", "", "");
  }
  if (req.limit_bytes > 0) {
    o.limit_bytes = req.limit_bytes;
  }
  if (!req.since.empty() && !req.since_time.empty()) {
    return makeError("at most one of `sinceTime` or `sinceSeconds` may be specified", "", "");
  }
  if (!req.since.empty()) {
    auto d = parseGoDuration(req.since);
    if (!d || *d <= 0) {
      return makeError("invalid argument \"" + req.since + "\" for \"--since\" flag", "",
                       "expected a duration such as 5s, 2m or 3h");
    }
    // Whole seconds, rounded up, as kubectl sends sinceSeconds.
    int64_t secs = (*d + 999999999) / 1000000000;
    o.since_nanos = nowNanos() - secs * 1000000000;
  }
  if (!req.since_time.empty()) {
    o.since_nanos = logs::parseRfc3339(req.since_time);
    if (!o.since_nanos) {
      return makeError("--since-time", "",
                       "\"" + req.since_time + "\" is not an RFC 3339 time (2006-01-02T15:04:05Z)");
    }
  }
  TRY_VOID(logs::validateLogOptions(o));
  return o;
}

// Copies the stream to `out` until it ends; waits on its fd between pieces.
Result<void> copyLog(logs::LogStream& stream, std::ostream& out) {
  std::string chunk;
  for (;;) {
    chunk.clear();
    TRY(auto state, stream.read(chunk, size_t{256} * 1024));
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (state == logs::LogStream::State::kEnd) {
      out.flush();
      return {};
    }
    if (state == logs::LogStream::State::kWait) {
      out.flush();
      pollfd p{.fd = stream.waitFd(), .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, static_cast<int>(stream.pollAfter().count())) < 0 && errno != EINTR) {
        return sysError("poll log");
      }
    }
  }
}

}  // namespace

int printLogs(const LogsRequest& req, std::ostream& out, std::ostream& err) {
  auto options = logOptions(req);
  if (!options) {
    err << "kernelet logs: " << options.error().message() << "\n";
    return 1;
  }
  std::vector<PodSummary> pods = readPods(req.root_dir, err);
  auto p = std::find_if(pods.begin(), pods.end(), [&](const PodSummary& s) {
    return s.name == req.pod && s.namespace_ == req.namespace_;
  });
  if (p == pods.end()) {
    err << "kernelet logs: pods \"" << req.pod << "\" not found in namespace " << req.namespace_
        << "\n";
    return 1;
  }
  std::string name = req.container;
  if (name.empty()) {
    if (p->status.container_statuses.size() != 1) {
      err << "kernelet logs: a container name must be specified for pod " << req.pod
          << ", choose one of: [";
      for (size_t i = 0; i < p->status.container_statuses.size(); i++) {
        err << (i > 0 ? " " : "") << p->status.container_statuses[i].name;
      }
      err << "]\n";
      return 1;
    }
    name = p->status.container_statuses[0].name;
  }
  const ContainerStatus* which = logs::findContainerStatus(p->status, name);
  if (which == nullptr) {
    err << "kernelet logs: container " << name << " is not valid for pod " << req.pod << "\n";
    return 1;
  }
  auto run = logs::logRun(which, req.pod, name, req.previous);
  if (!run) {
    err << "kernelet logs: " << run.error().message() << "\n";
    return 1;
  }
  // What the agent last wrote of the pod: whether this run still runs.
  std::string status_file = req.root_dir + "/pods/" + p->uid + "/status.json";
  logs::LogStream::Running running = [status_file, name, run = *run, previous = req.previous] {
    if (previous) {
      return false;
    }
    auto text = readFile(status_file);
    auto pod =
        text ? parsePodJson(*text, status_file) : Result<PodSummary>(std::unexpected(text.error()));
    const ContainerStatus* s = pod ? logs::findContainerStatus(pod->status, name) : nullptr;
    return s != nullptr && logs::runIsRunning(*s, run);
  };
  auto stream = logs::LogStream::open(
      logs::containerLogDir(req.pod_log_dir, p->namespace_, p->name, p->uid, name), *run, *options,
      std::move(running));
  if (!stream) {
    err << "kernelet logs: " << stream.error().message() << "\n";
    return 1;
  }
  if (auto copied = copyLog(**stream, out); !copied) {
    err << "kernelet logs: " << copied.error().message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace kernelet::agent
