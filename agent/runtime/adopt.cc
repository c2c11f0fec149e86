// KernelRuntime taking over what a previous agent left running (issue #16):
// the pod records it wrote (run_records.h), the runs the keeper held for it
// (run_keeper.h), and the hand-over when this agent goes (leaveRunning).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "agent/runtime/container_builder.h"
#include "agent/runtime/instance.h"
#include "agent/runtime/kernel_runtime.h"
#include "images/image_config.h"
#include "isolation/container_exit.h"
#include "isolation/oci_state.h"
#include "sys/syscalls.h"

namespace kernelet::agent::runtime {
namespace {

constexpr const char* kUnknown = "ContainerStatusUnknown";

std::string rfc3339(std::chrono::system_clock::time_point t) {
  time_t secs = std::chrono::system_clock::to_time_t(t);
  tm utc{};
  (void)::gmtime_r(&secs, &utc);  // cannot fail for a time_t from a time_point
  char buf[32];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return std::string(buf, n);
}

bool readable(int fd) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, 0) == 1;
}

RunEnd runEnd(const RunRecord& r) {
  return RunEnd{.id = r.id,
                .exit = {.exit_code = r.exit_code,
                         .reason = r.reason,
                         .message = r.message,
                         .oom_killed = r.oom_killed},
                .started_at = r.started_at,
                .finished_at = r.finished_at};
}

// The kubelet's words for a container whose end it could not learn.
ContainerExit unknownExit(const std::string& why) {
  return {.exit_code = 137, .reason = kUnknown, .message = why};
}

void endRun(RunRecord& run, const ContainerExit& e, const std::string& finished_at) {
  run.ended = true;
  run.exit_code = e.exit_code;
  run.reason = e.reason;
  run.message = e.message;
  run.oom_killed = e.oom_killed;
  run.finished_at = finished_at;
}

// The wait status of `proc` if it is our child and has exited: a runtime
// restarted within one process (tests) is still its parent.
std::optional<int> reapIfChild(isolation::Process* proc) {
  if (proc == nullptr || proc->pidfd() < 0) {
    return std::nullopt;
  }
  auto w = proc->tryWait();  // ECHILD for another agent's child: not an error here
  if (!w) {
    return std::nullopt;
  }
  std::optional<isolation::ExitStatus> st = *w;
  if (!st) {
    return std::nullopt;
  }
  return st->signal != 0 ? st->signal : (st->code & 0xff) << 8;
}

bool oomKilledIn(const cgroups::Cgroup& group) {
  auto s = group.stats();
  return s && s->memory_oom_kill > 0;  // the group is the run's own: any kill was this run's
}

}  // namespace

Result<cgroups::Cgroup> openCgroup(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) {
    return makeError("open cgroup", path, "not a cgroup path");
  }
  return cgroups::Cgroup::open(path.substr(0, slash), path.substr(slash + 1));
}

PodSandbox::Layout sandboxLayout(const PodRecord& r) {
  return {.pod_id = r.uid,
          .run_dir = r.run_dir,
          .netns_path = r.netns_path,
          .ip = r.ip,
          .hostname = r.hostname,
          .cgroup = r.cgroup};
}

PumpedPipe PumpedPipe::of(int fd) {
  PumpedPipe p;
  struct stat st {};
  if (fd >= 0 && ::fstat(fd, &st) == 0) {
    p = {.fd = fd, .dev = st.st_dev, .ino = st.st_ino};
  }
  return p;
}

bool PumpedPipe::stillOpen() const {
  struct stat st {};
  return fd >= 0 && ::fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

void Instance::leave(EventLoop& loop) {
  for (const PumpedPipe& p : pipes) {
    if (p.stillOpen()) {
      loop.remove(p.fd);
    }
  }
  // The writer closes its pipe ends undrained: what waits in them is the next
  // agent's to write. A partial line it holds (no newline yet) is lost.
  log.reset();
  stdio.endSessions();  // the keeper holds stdin and the master for the next agent
  has_cgroup = false;   // the Cgroup and Rootfs handles close, the group and mount stay
}

void Instance::adoptKept(const RunRecord& r, std::optional<KeptRun>& kept) {
  stdio.stdin = r.stdin;
  stdio.stdin_once = r.stdin_once;
  stdio.tty = r.tty;
  stdio.stdin_closed = r.stdin_closed;
  if (!kept) {
    return;
  }
  // Its stdin's write end (or the master) comes back with the log's fds.
  if (std::optional<size_t> pumped = stdio.adoptKept(kept->fds)) {
    for (size_t i = 0; i < *pumped; i++) {
      pipes[i] = PumpedPipe::of(kept->fds[i].get());
    }
  } else {
    kept->fds.clear();  // not this run's stdio: as if they were lost
  }
}

ContainerExit exitFromWaitStatus(int wait_status, bool oom_killed) {
  isolation::ContainerExit e;
  if (WIFSIGNALED(wait_status)) {
    e.status.signal = WTERMSIG(wait_status);
  } else {
    e.status.code = WEXITSTATUS(wait_status);
  }
  e.oom_killed = oom_killed;
  return {.exit_code = e.status.shellStatus(), .reason = e.reason(), .oom_killed = oom_killed};
}

void KernelRuntime::recordRun(const Instance& inst) {
  auto it = pods_.find(inst.pod_uid);
  if (it == pods_.end()) {
    return;
  }
  ContainerRecord& c = it->second.record.containers[inst.name];
  if (c.latest && c.latest->id != inst.run.id) {
    if (c.previous && !c.previous->termination_file.empty()) {
      // Only the latest run and the one before are shown: older files go.
      ::unlink(c.previous->termination_file.c_str());
    }
    c.previous = std::move(c.latest);
  }
  c.latest = inst.run;
  saveRecord(it->second);
}

void KernelRuntime::loadRecords() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(config_.root_dir + "/pods", ec)) {
    std::string path = e.path().string() + "/runtime.json";
    if (::access(path.c_str(), F_OK) != 0) {
      continue;
    }
    auto r = readCurrentRecord(path, boot_id_);
    if (r && r->uid == e.path().filename().string()) {
      found_[r->uid] = std::move(*r);
      continue;
    }
    // Recovery keeps only records it could read; one that is bad now was
    // broken since. Nothing it names is trusted: the record goes, and the
    // next start's recovery removes the rest.
    log::error("Unusable pod record",
               {{"path", path}, {"err", r ? "names another pod" : r.error().message()}});
    ::unlink(path.c_str());
  }
}

struct KernelRuntime::AdoptInput {
  const Pod* pod;
  QosClass qos;
  PodRuntimeInfo info;
  PodObjects* objects;
  PodEntry* entry;
  std::vector<std::unique_ptr<Instance>>* live;  // adopted running runs, not yet handles
  std::shared_ptr<const Instance::SpecSource> spec_source;
  bool failed = false;
  bool changed = false;  // a run's end was recorded: the record is written again
};

std::unique_ptr<isolation::CriLogWriter> KernelRuntime::reopenLog(const RunRecord& run,
                                                                  std::optional<KeptRun>& kept) {
  if (!kept || kept->fds.size() != (run.tty ? 1U : 2U)) {
    return nullptr;
  }
  auto writer = isolation::CriLogWriter::open(run.log_path);
  if (!writer) {
    log::error("Reopen container log", {{"path", run.log_path}, {"err", writer.error().message()}});
    return nullptr;
  }
  auto log = std::make_unique<isolation::CriLogWriter>(std::move(*writer));
  log->rotateAt(config_.container_log_max_size, config_.container_log_max_files);
  auto p = run.tty ? log->pumpTerminal(loop_, std::move(kept->fds[0]))
                   : log->pump(loop_, std::move(kept->fds[0]), std::move(kept->fds[1]));
  if (!p) {
    log::error("Pump container log", {{"path", run.log_path}, {"err", p.error().message()}});
    return nullptr;
  }
  return log;
}

RunEnd KernelRuntime::exitOfGone(RunRecord& run, std::optional<KeptRun>& kept,
                                 isolation::Process* proc) {
  // Whoever saw the exit: the keeper (it ended while no agent was its
  // parent), or we are its parent still (a runtime restarted in-process).
  ContainerExit e;
  std::string finished = nowRfc3339();
  bool oom = false;
  if (auto g = openCgroup(run.cgroup); g) {
    oom = oomKilledIn(*g);
  }
  if (kept && kept->exit) {
    e = exitFromWaitStatus(kept->exit->wait_status, oom);
    finished = rfc3339(std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(kept->exit->finished_unix_ns))));
  } else if (std::optional<int> status = reapIfChild(proc)) {
    e = exitFromWaitStatus(*status, oom);
  } else {
    e = unknownExit("The container could not be located when the pod was adopted");
  }
  endRun(run, e, finished);
  return runEnd(run);
}

AdoptedContainer KernelRuntime::adoptRun(AdoptInput& in, const std::string& name,
                                         const ContainerRecord& c) {
  RunRecord run = c.latest.value_or(RunRecord{});  // the caller passes runs with a latest
  AdoptedContainer out{.name = name,
                       .id = run.id,
                       .restart_count = run.restart_count,
                       .started_at = run.started_at,
                       .image = {.name = run.image_name, .id = run.image_id},
                       .stop_signal = run.stop_signal,
                       .user = run.user};
  if (c.previous && c.previous->ended) {
    out.previous = runEnd(*c.previous);
  }
  if (run.ended) {
    out.ended = runEnd(run);
    return out;
  }
  std::optional<KeptRun> kept;
  if (keeper_ != nullptr) {
    if (auto f = keeper_->fetch(run.id); f) {
      kept = std::move(*f);
    } else {
      log::error("Fetch kept run", {{"container", name}, {"err", f.error().message()}});
    }
  }
  // The process, named without a pid-reuse race: the keeper's pidfd, or one
  // opened now and checked against the recorded start time.
  UniqueFd pidfd;
  if (kept && kept->pidfd) {
    pidfd = std::move(kept->pidfd);
  } else if (int fd = sys::pidfdOpen(run.pid); fd >= 0) {
    pidfd = UniqueFd(fd);
    if (isolation::processStartTime(run.pid) != run.start_time) {
      pidfd.reset();  // another process has the pid now, or it is a zombie
    }
  }
  auto inst = std::make_unique<Instance>();
  inst->id = run.id;
  inst->pod_uid = in.pod->uid;
  inst->name = name;
  inst->stop_signal = run.stop_signal;
  inst->adopted = true;
  inst->rootfs = images::Rootfs::adopt(run.rootfs_dir);
  bool alive = pidfd && !readable(pidfd.get());
  inst->proc = isolation::Process(run.pid, std::move(pidfd));
  auto group = openCgroup(run.cgroup);
  if (group) {
    inst->cgroup = std::move(*group);
    inst->has_cgroup = true;
  }
  bool rootfs_there = ::access(inst->rootfs.path().c_str(), F_OK) == 0;
  inst->adoptKept(run, kept);
  if (alive && (!group || !rootfs_there)) {
    // A run that lost its cgroup or rootfs under it is not one to keep.
    log::error("Adopt container: inconsistent run",
               {{"container", name},
                {"err", !group ? group.error().message() : "rootfs gone: " + run.rootfs_dir}});
    (void)inst->proc.signal(SIGKILL);  // the pod is removed; its cgroup.kill ends the rest
    inst->log = reopenLog(run, kept);
    inst->release(loop_);
    in.failed = true;
    return out;
  }
  inst->log = reopenLog(run, kept);
  inst->tapLog();
  if (alive && !inst->log) {
    // No one held its pipes (no keeper, or it lost them): its output would
    // go nowhere, and a full pipe would block it. It cannot be kept.
    log::error("Adopt container: its log pipes were lost; killing it",
               {{"container", name}, {"pid", std::to_string(run.pid)}});
    if (inst->has_cgroup) {
      (void)inst->cgroup.write("cgroup.kill", "1");  // release() waits for the group to empty
    }
    (void)inst->proc.signal(SIGKILL);  // gone already is fine
    (void)inst->proc.tryWait();        // our child only in a runtime restarted in-process
    endRun(run, unknownExit("The container's log pipes were lost when the pod was adopted"),
           nowRfc3339());
    alive = false;
  } else if (!alive) {
    out.ended = exitOfGone(run, kept, &inst->proc);
  }
  inst->run = run;
  if (!alive) {
    inst->release(loop_);        // drains what it wrote before it ended into its log
    addTerminationMessage(run);  // read now, as the agent that saw the exit would have
    out.ended = runEnd(run);
    if (keeper_ != nullptr) {
      keeper_->forget(run.id);
    }
    in.entry->record.containers[name].latest = run;
    in.changed = true;
    dropTerminationFile(run);  // its message is in the record now
    return out;
  }
  // Alive: exec (probes) needs the spec it runs under, rebuilt from the
  // pod's current spec as the start built it, on the first exec (specFor).
  inst->has_spec = false;
  inst->spec_source = in.spec_source;
  in.live->push_back(std::move(inst));
  return out;
}

std::optional<AdoptedPod> KernelRuntime::adopt(const Pod& pod, QosClass qos,
                                               const PodRuntimeInfo& info, PodObjects* objects) {
  auto found = found_.find(pod.uid);
  if (found == found_.end()) {
    return std::nullopt;
  }
  PodRecord r = std::move(found->second);
  found_.erase(found);
  std::string path = recordPath(config_.root_dir, pod.uid);
  auto sandbox = PodSandbox::adopt(sandboxLayout(r), sandbox_env_);
  if (!sandbox) {
    log::error("Adopt pod: its sandbox is gone; removing it",
               {{"path", path}, {"err", sandbox.error().message()}});
    removeNow(r);
    return std::nullopt;
  }
  PodEntry& entry = pods_[pod.uid];
  entry.sandbox = std::move(*sandbox);
  if (!r.volumes_dir.empty()) {
    entry.volumes = PodVolumes::adopt({.dir = r.volumes_dir,
                                       .paths = r.volume_paths,
                                       .tmpfs = r.tmpfs,
                                       .projected = r.projected});
  }
  entry.record = r;
  AdoptedPod out{.pod_hash = r.pod_hash,
                 .sandbox = {.ip = r.ip, .netns_path = entry.sandbox->netnsPath()}};
  if (r.kill_at_unix_ms) {
    out.kill_at =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(*r.kill_at_unix_ms));
  }
  std::vector<std::unique_ptr<Instance>> live;
  AdoptInput in{.pod = &pod,
                .qos = qos,
                .info = info,
                .objects = objects,
                .entry = &entry,
                .live = &live,
                .spec_source = std::make_shared<const Instance::SpecSource>(Instance::SpecSource{
                    .pod = pod, .qos = qos, .info = info, .objects = objects})};
  for (const auto& [name, c] : r.containers) {
    if (c.latest) {
      out.containers.push_back(adoptRun(in, name, c));
    }
  }
  if (in.failed) {
    log::error("Adopt pod: inconsistent; removing it", {{"path", path}});
    for (auto& inst : live) {
      (void)inst->proc.signal(SIGKILL);
      inst->release(loop_);
      if (keeper_ != nullptr) {
        keeper_->forget(inst->id);
      }
    }
    pods_.erase(pod.uid);
    removeNow(r);
    return std::nullopt;
  }
  size_t next_live = 0;
  for (AdoptedContainer& c : out.containers) {
    if (c.ended) {
      continue;
    }
    ContainerHandle h = next_handle_++;
    c.handle = h;
    containers_[h] = std::move(live[next_live++]);
  }
  if (in.changed) {
    saveRecord(entry);  // else it says what it said: adopting 100 pods need not rewrite 100 files
  }
  return out;
}

Result<void> KernelRuntime::specFor(Instance& inst) {
  if (inst.has_spec) {
    return {};
  }
  if (!inst.spec_source) {
    return makeError("exec", inst.name, "the pod's spec has no such container");
  }
  const Instance::SpecSource& src = *inst.spec_source;
  ContainerInput ci{.pod = &src.pod,
                    .rootfs = inst.rootfs.path(),
                    .qos = src.qos,
                    .node_memory = node_.capacity_memory,
                    .info = src.info,
                    .seccomp_dir = config_.root_dir + "/seccomp",
                    .seccomp_default = config_.seccomp_default,
                    .objects = src.objects};
  for (const auto* list : {&src.pod.containers, &src.pod.init_containers}) {
    for (const Container& ct : *list) {
      if (ct.name == inst.name) {
        ci.container = &ct;
      }
    }
  }
  for (const Container& ct : src.pod.ephemeral_containers) {
    if (ct.name == inst.name) {
      ci.container = &ct;
    }
  }
  auto pod = pods_.find(inst.pod_uid);
  if (ci.container == nullptr || pod == pods_.end() || !pod->second.sandbox ||
      !pod->second.volumes) {
    return makeError("exec", inst.name, "the pod's spec has no such container");
  }
  ci.sandbox = &*pod->second.sandbox;
  ci.volumes = &*pod->second.volumes;
  TRY(images::ImageRecord image, images_.find(inst.run.image_name));
  TRY(std::string config, images_.configJson(image));
  TRY(ci.image, images::parseImageConfig(config, inst.run.image_name));
  TRY(inst.spec, buildContainerSpec(ci));
  inst.has_spec = true;
  inst.spec_source.reset();
  return {};
}

Result<void> KernelRuntime::watchAdopted(ContainerHandle h, Instance& inst) {
  int fd = inst.proc.pidfd();
  return loop_.add(fd, EPOLLIN, [this, h, fd](uint32_t) {
    loop_.remove(fd);
    Instance* inst = find(h);
    if (inst == nullptr) {
      return;
    }
    // Our child only in a runtime restarted in-process; otherwise waitid
    // fails with ECHILD and the keeper, which listened, has the status.
    std::optional<KeptRun> kept;
    std::optional<int> status = reapIfChild(&inst->proc);
    if (!status && keeper_ != nullptr) {
      if (auto f = keeper_->fetch(inst->id); f) {
        kept = std::move(*f);
      }
    }
    RunRecord run = inst->run;
    RunEnd end = exitOfGone(run, kept, nullptr);
    if (status) {
      end.exit = exitFromWaitStatus(*status, inst->has_cgroup && oomKilledIn(inst->cgroup));
    }
    onExited(h, end.exit);
  });
}

void KernelRuntime::noteTerminating(const std::string& pod_uid,
                                    std::chrono::system_clock::time_point kill_at) {
  auto it = pods_.find(pod_uid);
  if (it == pods_.end()) {
    return;
  }
  it->second.record.kill_at_unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(kill_at.time_since_epoch()).count();
  saveRecord(it->second);
}

void KernelRuntime::leaveRunning() { leave_running_ = true; }

}  // namespace kernelet::agent::runtime
