#include "agent/app/pods_cli.h"

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <vector>

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

std::string criLogMessages(const std::string& cri_log) {
  std::string out;
  std::istringstream in(cri_log);
  for (std::string line; std::getline(in, line);) {
    // TIMESTAMP STREAM TAG CONTENT
    size_t a = line.find(' ');
    size_t b = a == std::string::npos ? a : line.find(' ', a + 1);
    size_t c = b == std::string::npos ? b : line.find(' ', b + 1);
    if (c == std::string::npos) {
      continue;
    }
    std::string tag = line.substr(b + 1, c - b - 1);
    out += line.substr(c + 1);
    if (tag != "P") {
      out += '\n';
    }
  }
  return out;
}

int printLogs(const LogsRequest& req, std::ostream& out, std::ostream& err) {
  std::vector<PodSummary> pods = readPods(req.root_dir, err);
  auto p = std::find_if(pods.begin(), pods.end(), [&](const PodSummary& s) {
    return s.name == req.pod && s.namespace_ == req.namespace_;
  });
  if (p == pods.end()) {
    err << "kernelet logs: pods \"" << req.pod << "\" not found in namespace " << req.namespace_
        << "\n";
    return 1;
  }
  std::vector<const ContainerStatus*> all;
  for (const auto* list : {&p->status.init_container_statuses, &p->status.container_statuses}) {
    for (const auto& c : *list) {
      all.push_back(&c);
    }
  }
  const ContainerStatus* which = nullptr;
  if (req.container.empty()) {
    if (p->status.container_statuses.size() == 1) {
      which = &p->status.container_statuses[0];
    } else {
      err << "kernelet logs: a container name must be specified for pod " << req.pod
          << ", choose one of: [";
      for (size_t i = 0; i < p->status.container_statuses.size(); i++) {
        err << (i > 0 ? " " : "") << p->status.container_statuses[i].name;
      }
      err << "]\n";
      return 1;
    }
  } else {
    for (const auto* c : all) {
      if (c->name == req.container) {
        which = c;
      }
    }
    if (which == nullptr) {
      err << "kernelet logs: container " << req.container << " is not valid for pod " << req.pod
          << "\n";
      return 1;
    }
  }
  int index = which->restart_count;
  if (req.previous) {
    if (which->last_state.kind != Kind::kTerminated) {
      err << "kernelet logs: previous terminated container \"" << which->name << "\" in pod \""
          << req.pod << "\" not found\n";
      return 1;
    }
    // Run N writes N.log; the latest run is restartCount (running, or dead and
    // backing off), the one before it is the previous.
    index = which->restart_count - 1;
  }
  std::string file = req.pod_log_dir + "/" + p->namespace_ + "_" + p->name + "_" + p->uid + "/" +
                     which->name + "/" + std::to_string(index) + ".log";
  auto text = readFile(file);
  if (!text) {
    // Waiting for its first start: nothing logged yet, as kubectl shows it.
    if (which->state.kind == Kind::kWaiting && which->last_state.kind == Kind::kNone) {
      err << "kernelet logs: container \"" << which->name << "\" in pod \"" << req.pod
          << "\" is waiting to start: " << which->state.reason << "\n";
      return 1;
    }
    err << "kernelet logs: " << text.error().message() << "\n";
    return 1;
  }
  out << criLogMessages(*text);
  return 0;
}

}  // namespace kernelet::agent
