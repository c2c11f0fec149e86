#include "support/fake_runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/runtime/pod_sandbox.h"
#include "agent/runtime/termination_message.h"
#include "sys/unique_fd.h"

namespace kernelet::testing {
namespace {

// An exec that has already exited: its exit fd is readable at once.
class DoneExec : public rt::ExecProcess {
 public:
  DoneExec(UniqueFd fd, int code) : fd_(std::move(fd)), code_(code) {}
  int exitFd() const override { return fd_.get(); }
  Result<int> reap() override { return code_; }

 private:
  UniqueFd fd_;
  int code_;
};

}  // namespace

FakeRuntime::~FakeRuntime() {
  for (auto id : pending_) {
    timers_.cancel(id);
  }
}

void FakeRuntime::failPulls(const std::string& ref, int times, const std::string& message) {
  pull_failures_[ref] = {times, message};
}

void FakeRuntime::failStarts(const std::string& name, int times, const std::string& reason,
                             const std::string& message) {
  for (int i = 0; i < times; i++) {
    start_failures_[name].emplace_back(reason, message);
  }
}

void FakeRuntime::failSandbox(int times, const std::string& message) {
  sandbox_failures_ = times;
  sandbox_error_ = message;
}

void FakeRuntime::setExec(const std::string& name, int exit_code, const std::string& output) {
  execs_[name] = {exit_code, output};
}

rt::ContainerHandle FakeRuntime::find(const std::string& name) const {
  for (const auto& [h, r] : runs_) {
    if (r.name == name && !r.exiting) {
      return h;
    }
  }
  return 0;
}

bool FakeRuntime::exit(const std::string& name, int code, const std::string& reason) {
  rt::ContainerHandle h = find(name);
  if (h == 0) {
    return false;
  }
  exitLater(h, code, reason);
  return true;
}

bool FakeRuntime::running(const std::string& name) const { return find(name) != 0; }

int FakeRuntime::starts(const std::string& name) const {
  auto it = starts_.find(name);
  return it == starts_.end() ? 0 : it->second;
}

std::vector<std::string> FakeRuntime::calls(const std::string& prefix) const {
  std::vector<std::string> out;
  for (const auto& c : calls_) {
    if (c.starts_with(prefix)) {
      out.push_back(c);
    }
  }
  return out;
}

void FakeRuntime::exitLater(rt::ContainerHandle h, int code, const std::string& reason) {
  runs_[h].exiting = true;
  std::string why = !reason.empty() ? reason : code == 0 ? "Completed" : "Error";
  pending_.push_back(timers_.after(std::chrono::seconds(0), [this, h, code, why] {
    auto it = runs_.find(h);
    if (it == runs_.end()) {
      return;
    }
    Run run = std::move(it->second);
    runs_.erase(it);
    calls_.push_back("exited " + run.name + " " + std::to_string(code));
    endSessions(run);
    if (run.on_exit) {
      std::string message;
      if (!run.termination_file.empty()) {
        message = rt::terminationMessage({.exit_code = code,
                                          .reason = why,
                                          .file = run.termination_file,
                                          .fallback_to_logs = run.fallback_to_logs,
                                          .log_path = run.log_path});
        ::unlink(run.termination_file.c_str());  // as the runtime: read once, then gone
      }
      run.on_exit(
          {.exit_code = code, .reason = why, .message = message, .oom_killed = why == "OOMKilled"});
    }
  }));
}

Result<rt::SandboxInfo> FakeRuntime::createSandbox(const agent::Pod& pod, agent::QosClass,
                                                   const std::string& pod_hash) {
  calls_.push_back("createSandbox");
  hashes_[pod.uid] = pod_hash;
  if (sandbox_failures_ > 0) {
    sandbox_failures_--;
    return makeError("create sandbox", pod.uid, sandbox_error_);
  }
  sandboxes_.insert(pod.uid);
  return rt::SandboxInfo{.ip = "10.88.0.7"};
}

Result<void> FakeRuntime::setUpVolumes(const agent::Pod&, const agent::PodRuntimeInfo&,
                                       agent::PodObjects*) {
  calls_.push_back("setUpVolumes");
  return {};
}

Result<bool> FakeRuntime::refreshVolumes(const agent::Pod&, const agent::PodRuntimeInfo&,
                                         agent::PodObjects*) {
  return false;
}

void FakeRuntime::destroySandbox(const std::string& pod_uid, std::function<void()> done) {
  calls_.push_back("destroySandbox");
  sandboxes_.erase(pod_uid);
  if (done) {
    done();
  }
}

void FakeRuntime::ensureImage(const std::string& ref, const std::string& pull_policy,
                              const Result<std::vector<images::RegistryCredentials>>& creds,
                              std::function<void()> pulling,
                              std::function<void(rt::ImageOutcome)> done) {
  rt::ImageOutcome ok{.ok = true, .image = {.name = ref, .id = ref + "@sha256:fake"}};
  bool present = present_.contains(ref);
  if (present && pull_policy != "Always") {
    return done(ok);
  }
  if (!present && pull_policy == "Never") {
    return done(
        {.reason = "ErrImageNeverPull",
         .message = "Container image \"" + ref + "\" is not present with pull policy of Never"});
  }
  std::string with;
  for (const auto& c : creds ? *creds : std::vector<images::RegistryCredentials>{}) {
    with += (with.empty() ? " with " : ",") + c.username;
  }
  calls_.push_back("pull " + ref + with);
  pulling();
  if (!creds) {
    return done({.reason = "ErrImagePull", .message = creds.error().message()});
  }
  pending_.push_back(timers_.after(std::chrono::seconds(0), [this, ref, ok, done] {
    auto& [times, message] = pull_failures_[ref];
    if (times > 0) {
      times--;
      return done({.reason = "ErrImagePull", .message = message});
    }
    present_.insert(ref);
    rt::ImageOutcome pulled = ok;
    pulled.pulled = true;
    pulled.size = 1234;
    pulled.pull_time = std::chrono::milliseconds(1500);
    done(pulled);
  }));
}

void FakeRuntime::startContainer(const rt::ContainerRequest& request,
                                 std::function<void(rt::StartResult)> done) {
  std::string name = request.container->name;
  calls_.push_back("start " + name);
  starts_[name]++;
  auto shared = runs_.find(request.share_pid_with);
  shared_pid_[name] = shared == runs_.end() ? "" : shared->second.name;
  std::string uid = request.pod->uid;
  bool stdin = request.container->stdin, stdin_once = request.container->stdin_once,
       tty = request.container->tty;
  std::string log_path = request.log_dir + "/" + std::to_string(request.restart_count) + ".log";
  bool fallback = request.container->termination_message_policy == "FallbackToLogsOnError";
  // Its cgroup is made now, from the resources asked for now (as the real
  // runtime's create does), whenever the answer arrives.
  agent::ContainerResources resources = request.container->resources;
  bool wants_file =
      !termination_dir_.empty() && !request.container->termination_message_path.empty();
  auto answer = [this, name, uid, stdin, stdin_once, tty, log_path, fallback, wants_file, resources,
                 done = std::move(done)] {
    auto& failures = start_failures_[name];
    std::string id = std::string(64 - std::to_string(next_).size(), '0') + std::to_string(next_);
    if (!failures.empty()) {
      auto [reason, message] = failures.front();
      failures.erase(failures.begin());
      next_++;
      return done(std::unexpected(rt::StartFailure{
          .reason = reason, .message = message, .id = reason == "StartError" ? id : ""}));
    }
    rt::ContainerHandle h = next_++;
    std::string file;
    if (wants_file) {
      auto made = rt::createTerminationFile(termination_dir_ + "/" + uid + "/" + name);
      file = made ? *made : "";
      termination_files_[name] = file;
    }
    runs_[h] = {.name = name,
                .pod_uid = uid,
                .id = id,
                .stdin = stdin,
                .stdin_once = stdin_once,
                .tty = tty,
                .termination_file = file,
                .log_path = log_path,
                .fallback_to_logs = fallback};
    cgroup_[name] = limitsText(resources);
    done(rt::StartedContainer{.handle = h,
                              .id = id,
                              .started_at = rt::nowRfc3339(),
                              .pid = static_cast<int>(1000 + h),
                              .stop_signal = SIGTERM,
                              .resources = resources});
  };
  if (async_starts_) {
    pending_.push_back(timers_.after(std::chrono::seconds(0), answer));
  } else {
    answer();
  }
}

Result<void> FakeRuntime::watchExit(rt::ContainerHandle h,
                                    std::function<void(rt::ContainerExit)> done) {
  auto it = runs_.find(h);
  if (it == runs_.end()) {
    return makeError("watch exit", std::to_string(h), "no such container");
  }
  it->second.on_exit = std::move(done);
  return {};
}

Result<void> FakeRuntime::signal(rt::ContainerHandle h, int sig) {
  auto it = runs_.find(h);
  if (it == runs_.end() || it->second.exiting) {
    return makeError("kill", std::to_string(h), "no such process");
  }
  calls_.push_back("signal " + it->second.name + " " + std::to_string(sig));
  if (sig == SIGKILL || !stubborn_.contains(it->second.name)) {
    exitLater(h, 128 + sig, "Error");
  }
  return {};
}

Result<void> FakeRuntime::kill(rt::ContainerHandle h) {
  auto it = runs_.find(h);
  if (it == runs_.end()) {
    return makeError("kill", std::to_string(h), "no such process");
  }
  calls_.push_back("kill " + it->second.name);
  if (!it->second.exiting) {
    exitLater(h, 128 + SIGKILL, "Error");
  }
  return {};
}

void FakeRuntime::remove(rt::ContainerHandle h) {
  auto it = runs_.find(h);
  if (it != runs_.end()) {
    // After leaveRunning() the run goes on without this runtime.
    calls_.push_back((leaving_ ? "release " : "remove ") + it->second.name);
    Run run = std::move(it->second);
    runs_.erase(it);
    endSessions(run);
  }
}

Result<std::unique_ptr<rt::ExecProcess>> FakeRuntime::exec(rt::ContainerHandle h,
                                                           const std::vector<std::string>& argv,
                                                           const rt::ExecIo& io,
                                                           std::chrono::milliseconds) {
  auto it = runs_.find(h);
  if (it == runs_.end()) {
    return makeError("exec probe", "", "the container is not running");
  }
  calls_.push_back("exec " + it->second.name + " " + (argv.empty() ? "" : argv[0]));
  ExecResult r = execs_[it->second.name];
  if (!r.output.empty() && io.stdout_fd >= 0 &&
      ::write(io.stdout_fd, r.output.data(), r.output.size()) < 0) {
    return sysError("write", "exec output");
  }
  if (io.started) {
    // From the loop, later, as the real runtime reports it.
    pending_.push_back(timers_.after(std::chrono::seconds(0),
                                     [started = io.started] { started(Result<void>{}); }));
  }
  UniqueFd fd(::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) {
    return sysError("eventfd");
  }
  return std::unique_ptr<rt::ExecProcess>(std::make_unique<DoneExec>(std::move(fd), r.code));
}

Result<rt::ContainerStats> FakeRuntime::stats(rt::ContainerHandle h) {
  if (!runs_.contains(h)) {
    return makeError("container stats", std::to_string(h), "no such container");
  }
  auto mem = memory_.find(runs_.at(h).name);
  uint64_t current = mem == memory_.end() ? 8192 : mem->second;
  return rt::ContainerStats{
      .cpu_usage_usec = 1000, .memory_working_set = 4096, .memory_current = current};
}

std::string FakeRuntime::limitsText(const agent::ContainerResources& resources) {
  std::string text;
  for (const char* r : {"cpu", "memory"}) {
    if (auto l = resources.limits.find(r); l != resources.limits.end()) {
      text += (text.empty() ? "" : " ") + std::string(r) + "=" + l->second.str();
    }
  }
  return text;
}

Result<void> FakeRuntime::resizeContainer(rt::ContainerHandle h,
                                          const agent::ContainerResources& resources) {
  auto it = runs_.find(h);
  if (it == runs_.end()) {
    return makeError("resize container", std::to_string(h), "no such container");
  }
  calls_.push_back("resize " + it->second.name);
  resized_[it->second.name] = limitsText(resources);
  cgroup_[it->second.name] = limitsText(resources);
  return {};
}

Result<void> FakeRuntime::resizePod(const agent::Pod& pod) {
  calls_.push_back("resizePod");
  // The limits the real runtime writes, from the same function.
  cgroups::Limits l = agent::podCgroupLimits(pod);
  pod_limits_ = "cpu=" + (l.cpu_max ? std::to_string(l.cpu_max->quota_us) : "max") +
                " memory=" + (l.memory_max ? std::to_string(*l.memory_max) : "max");
  return {};
}

Result<uint64_t> FakeRuntime::podMemoryUsage(const std::string& pod_uid) {
  (void)pod_uid;
  return pod_memory_;
}

void FakeRuntime::leave(const std::string& uid, rt::AdoptedPod pod, const std::string& namespace_,
                        const std::string& name) {
  for (auto& c : pod.containers) {
    if (c.id.empty()) {
      c.id = std::string(64 - std::to_string(next_).size(), '0') + std::to_string(next_);
    }
    if (c.handle != 0) {
      c.handle = next_++;
      runs_[c.handle] = {.name = c.name, .pod_uid = uid, .id = c.id};
    }
  }
  left_[uid] = {std::move(pod), namespace_, name};
}

std::optional<std::chrono::system_clock::time_point> FakeRuntime::killAt(
    const std::string& uid) const {
  auto it = kill_at_.find(uid);
  if (it == kill_at_.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<rt::AdoptedPod> FakeRuntime::adopt(const agent::Pod& pod, agent::QosClass,
                                                 const agent::PodRuntimeInfo& /*info*/,
                                                 agent::PodObjects* /*objects*/) {
  auto it = left_.find(pod.uid);
  if (it == left_.end()) {
    return std::nullopt;
  }
  calls_.push_back("adopt " + pod.uid);
  rt::AdoptedPod adopted = std::move(it->second.pod);
  left_.erase(it);
  sandboxes_.insert(pod.uid);
  return adopted;
}

void FakeRuntime::noteTerminating(const std::string& pod_uid,
                                  std::chrono::system_clock::time_point kill_at) {
  calls_.push_back("noteTerminating " + pod_uid);
  kill_at_[pod_uid] = kill_at;
}

std::vector<rt::LeftoverPod> FakeRuntime::leftovers() const {
  std::vector<rt::LeftoverPod> out;
  out.reserve(left_.size());
  for (const auto& [uid, left] : left_) {
    out.push_back({uid, left.namespace_, left.name});
  }
  return out;
}

void FakeRuntime::stopLeftover(const std::string& pod_uid, std::function<void()> done) {
  calls_.push_back("stopLeftover " + pod_uid);
  for (auto it = runs_.begin(); it != runs_.end();) {
    if (it->second.pod_uid == pod_uid) {
      calls_.push_back("exited " + it->second.name + " 137");
      it = runs_.erase(it);
    } else {
      ++it;
    }
  }
  left_.erase(pod_uid);
  pending_.push_back(timers_.after(std::chrono::seconds(0), [done = std::move(done)] {
    if (done) {
      done();
    }
  }));
}

void FakeRuntime::leaveRunning() {
  calls_.push_back("leaveRunning");
  leaving_ = true;
}

}  // namespace kernelet::testing

namespace kernelet::testing {

void FakeRuntime::endSessions(Run& run) {
  std::map<uint64_t, Session> ending = std::move(run.sessions);
  run.sessions.clear();
  for (auto& [id, s] : ending) {
    s.out[0].reset();
    s.out[1].reset();
    s.ended();
  }
}

Result<rt::AttachedIo> FakeRuntime::attach(rt::ContainerHandle h, const rt::AttachIo& io,
                                           std::function<void()> ended) {
  auto it = runs_.find(h);
  if (it == runs_.end()) {
    return makeError("attach", std::to_string(h), "the container is not running");
  }
  Run& run = it->second;
  calls_.push_back("attach " + run.name + (io.stdin ? " stdin" : ""));
  rt::AttachedIo out;
  if (!run.stdin_r) {
    // Made at the first attach; with a terminal it also stands for the master.
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return sysError("pipe", "fake stdin");
    }
    run.stdin_r.reset(p[0]);
    run.stdin_w.reset(p[1]);
    (void)::fcntl(p[0], F_SETFL, O_NONBLOCK);  // readStdin never waits
  }
  if (io.stdin && !run.stdin) {
    return makeError("attach", run.name, "no stdin to join");
  }
  // After stdinOnce closed stdin, the session joins without it (the runtime's rule).
  bool gets_stdin = io.stdin && run.stdin_w;
  if (gets_stdin) {
    out.stdin_fd.reset(::fcntl(run.stdin_w.get(), F_DUPFD_CLOEXEC, 3));
  }
  if (run.tty && run.stdin_w) {
    out.terminal_fd.reset(::fcntl(run.stdin_w.get(), F_DUPFD_CLOEXEC, 3));
  }
  Session s{.stdin = gets_stdin, .ended = std::move(ended)};
  int given[2] = {io.stdout_fd, io.stderr_fd};
  for (int i = 0; i < 2; i++) {
    if (given[i] >= 0) {
      s.out[i].reset(::fcntl(given[i], F_DUPFD_CLOEXEC, 3));
      (void)::fcntl(s.out[i].get(), F_SETFL, O_NONBLOCK);
    }
  }
  out.session = next_session_++;
  run.sessions.emplace(out.session, std::move(s));
  return out;
}

void FakeRuntime::detach(rt::ContainerHandle h, uint64_t session) {
  auto it = runs_.find(h);
  if (it == runs_.end()) {
    return;
  }
  Run& run = it->second;
  auto s = run.sessions.find(session);
  if (s == run.sessions.end()) {
    return;
  }
  calls_.push_back("detach " + run.name);
  bool sent_stdin = s->second.stdin;
  run.sessions.erase(s);
  if (sent_stdin && run.stdin_once && !run.tty) {
    run.stdin_w.reset();
    calls_.push_back("close stdin " + run.name);
  }
}

void FakeRuntime::attachStdinEnded(rt::ContainerHandle h, uint64_t session) {
  auto it = runs_.find(h);
  if (it == runs_.end()) {
    return;
  }
  Run& run = it->second;
  auto s = run.sessions.find(session);
  if (s == run.sessions.end() || !s->second.stdin) {
    return;
  }
  calls_.push_back("stdin ended " + run.name);
  bool once = run.stdin_once && !run.tty;
  if (once && run.stdin_w) {
    run.stdin_w.reset();
    calls_.push_back("close stdin " + run.name);
  }
  if (!once || (!s->second.out[0] && !s->second.out[1])) {
    std::function<void()> ended = std::move(s->second.ended);
    run.sessions.erase(s);
    if (ended) {
      ended();
    }
  }
}

bool FakeRuntime::output(const std::string& name, int stream, const std::string& data) {
  rt::ContainerHandle h = find(name);
  if (h == 0) {
    return false;
  }
  for (auto& [id, s] : runs_[h].sessions) {
    UniqueFd& fd = s.out[stream];
    if (fd && ::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
      fd.reset();
    }
  }
  return true;
}

std::string FakeRuntime::readStdin(const std::string& name, bool* eof) {
  rt::ContainerHandle h = find(name);
  std::string got;
  if (eof != nullptr) {
    *eof = false;
  }
  if (h == 0 || !runs_[h].stdin_r) {
    return got;
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(runs_[h].stdin_r.get(), buf, sizeof buf);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0 && eof != nullptr) {
      *eof = true;
    }
    return got;
  }
}

size_t FakeRuntime::sessions(const std::string& name) const {
  rt::ContainerHandle h = find(name);
  return h == 0 ? 0 : runs_.at(h).sessions.size();
}

}  // namespace kernelet::testing
