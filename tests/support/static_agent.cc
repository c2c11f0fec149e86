#include "support/static_agent.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "support/process_util.h"
#include "sys/fileio.h"

namespace kernelet::testing {

namespace fs = std::filesystem;
using namespace std::chrono;

CommandResult runCommand(std::vector<std::string> args) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return {};
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return {};
  }
  auto argv = argvOf(args);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  CommandResult r;
  // stderr of these commands is short: stdout first cannot deadlock on it.
  r.out = readAll(out[0]);
  r.err = readAll(err[0]);
  ::waitpid(pid, &r.status, 0);
  return r;
}

StaticAgent::StaticAgent(const std::string& binary, const std::string& name) : binary_(binary) {
  std::string id = name + "-" + std::to_string(::getpid());
  base_ = "/tmp/kernelet-" + id;
  root_ = base_ + "/root";
  manifests_ = base_ + "/manifests";
  logs_ = base_ + "/logs";
  run_ = "/run/kernelet-" + id;
  cgroup_root_ = "/kernelet-" + id;
  fs::create_directories(manifests_);
}

StaticAgent::~StaticAgent() {
  stop();
  std::error_code ec;
  fs::remove_all(base_, ec);
  fs::remove_all(run_, ec);
  for (const char* q : {"/kubepods/burstable", "/kubepods/besteffort", "/kubepods", ""}) {
    ::rmdir((cgroupTop() + q).c_str());
  }
}

std::optional<std::string> StaticAgent::importImage(const std::string& layout) {
  CommandResult r = runCommand({binary_, "images", "--root-dir", root_, "import", layout});
  if (r.status != 0) {
    return "import " + layout + ": " + r.err;
  }
  return std::nullopt;
}

void StaticAgent::writeManifest(const std::string& file, const std::string& yaml) {
  std::string tmp = manifests_ + "/." + file + ".tmp";
  std::ofstream(tmp) << yaml;
  fs::rename(tmp, manifests_ + "/" + file);
}

void StaticAgent::start(std::vector<std::string> extra, int verbosity) {
  std::vector<std::string> args = {binary_,
                                   "run",
                                   "--stop-pods-on-exit",
                                   "--pod-manifest-path",
                                   manifests_,
                                   "--root-dir",
                                   root_,
                                   "--pod-log-dir",
                                   logs_,
                                   "--run-dir",
                                   run_,
                                   "--cgroup-root",
                                   cgroup_root_,
                                   "--hostname-override",
                                   "node1",
                                   "-v",
                                   std::to_string(verbosity)};
  args.insert(args.end(), extra.begin(), extra.end());
  pid_ = spawnLogged(std::move(args), base_ + "/agent.log");
}

int StaticAgent::stop() { return stopWithin(seconds(120)).status; }

StopResult StaticAgent::stopWithin(seconds limit) {
  StopResult r;
  if (pid_ <= 0) {
    return r;
  }
  auto t0 = steady_clock::now();
  ::kill(pid_, SIGTERM);
  while (::waitpid(pid_, &r.status, WNOHANG) == 0) {
    if (steady_clock::now() > t0 + limit) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &r.status, 0);
      r.killed = true;
      break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  r.took = steady_clock::now() - t0;
  pid_ = -1;
  return r;
}

std::string StaticAgent::log() const { return readFile(base_ + "/agent.log").value_or(""); }

std::optional<agent::PodSummary> StaticAgent::pod(const std::string& name) const {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ + "/pods", ec)) {
    auto text = readFile(e.path().string() + "/status.json");
    if (!text) {
      continue;
    }
    auto p = agent::parsePodJson(*text, e.path().string());
    if (p && p->name == name + "-node1") {
      return *p;
    }
  }
  return std::nullopt;
}

std::optional<agent::PodSummary> StaticAgent::waitFor(
    const std::string& name, const std::function<bool(const agent::PodSummary&)>& ok,
    seconds timeout) const {
  auto deadline = steady_clock::now() + timeout;
  while (steady_clock::now() < deadline) {
    auto p = pod(name);
    if (p && ok(*p)) {
      return p;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return std::nullopt;
}

const agent::ContainerStatus* StaticAgent::statusOf(const agent::PodSummary& p,
                                                    const std::string& container) {
  for (const auto* list : {&p.status.init_container_statuses, &p.status.container_statuses}) {
    for (const auto& c : *list) {
      if (c.name == container) {
        return &c;
      }
    }
  }
  return nullptr;
}

CommandResult StaticAgent::logs(const std::string& pod, const std::string& container) const {
  return runCommand(
      {binary_, "logs", "--root-dir", root_, "--pod-log-dir", logs_, pod + "-node1", container});
}

CommandResult StaticAgent::logsWith(const std::string& pod, const std::string& container,
                                    const std::string& needle, seconds timeout) const {
  auto deadline = steady_clock::now() + timeout;
  CommandResult l = logs(pod, container);
  while (l.out.find(needle) == std::string::npos && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(200));
    l = logs(pod, container);
  }
  return l;
}

std::optional<pid_t> StaticAgent::containerPid(const std::string& pod,
                                               const std::string& container) const {
  std::string text = log();
  std::string key =
      "\"Container started\" pod=\"default/" + pod + "-node1\" container=\"" + container + "\"";
  size_t at = text.rfind(key);
  if (at == std::string::npos) {
    return std::nullopt;
  }
  size_t pid_at = text.find("pid=\"", at);
  if (pid_at == std::string::npos) {
    return std::nullopt;
  }
  return static_cast<pid_t>(std::stol(text.substr(pid_at + 5)));
}

}  // namespace kernelet::testing
