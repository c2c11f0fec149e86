#include "agent/runtime/kernel_runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "agent/gc/container_gc.h"
#include "agent/log/log.h"
#include "agent/model/stop_signal.h"
#include "agent/runtime/container_builder.h"
#include "agent/runtime/instance.h"
#include "agent/runtime/pending_exec.h"
#include "cgroups/cgroups.h"
#include "images/image_config.h"
#include "images/policy.h"
#include "images/rootfs.h"
#include "isolation/container_exit.h"
#include "isolation/cri_log.h"
#include "isolation/isolation.h"
#include "isolation/oci_container.h"
#include "isolation/oci_state.h"

namespace kernelet::agent::runtime {
namespace {

// 64 hex digits, like a containerd container id.
std::string newContainerId() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    }
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

// Who the process starts as: the spec's uid and gid, and its groups with the
// primary gid first and each once, as containerd reports them in the CRI.
ProcessUser processUser(const isolation::ContainerSpec& s) {
  ProcessUser u{.uid = s.uid, .gid = s.gid, .groups = {s.gid}};
  for (gid_t g : s.additional_gids) {
    if (std::find(u.groups.begin(), u.groups.end(), g) == u.groups.end()) {
      u.groups.push_back(g);
    }
  }
  return u;
}

// docker.io/library/busybox:latest + sha256:... -> docker.io/library/busybox@sha256:...
std::string imageId(const images::ImageRecord& r) {
  std::string repo = r.name;
  size_t slash = repo.rfind('/');
  size_t colon = repo.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    repo.resize(colon);
  }
  return repo + "@" + r.manifest_digest;
}

constexpr int kLogPipeSize = 1 << 20;

ImageOutcome found(const images::ImageRecord& r, bool pulled) {
  return {
      .ok = true, .pulled = pulled, .image = {.name = r.name, .id = imageId(r)}, .size = r.size};
}

}  // namespace

struct KernelRuntime::Starting {
  std::unique_ptr<Instance> inst;
  UniqueFd out_r, err_r;        // the container's stdout and stderr, pumped once it runs
  ContainerStdio::Start stdio;  // stdin's read end, the console socket
  std::function<void(StartResult)> done;
  std::unique_ptr<isolation::StartWatch> watch;  // destroyed: the child is killed and reaped
};

KernelRuntime::KernelRuntime(const AgentConfig& config, EventLoop& loop, TimerQueue& timers,
                             images::ImageStore& images, ImagePuller& puller, SandboxEnv sandbox,
                             NodeResources node, RunKeeper* keeper)
    : config_(config),
      loop_(loop),
      timers_(timers),
      images_(images),
      puller_(puller),
      sandbox_env_(std::move(sandbox)),
      node_(node),
      keeper_(keeper),
      boot_id_(currentBootId()) {
  loadRecords();
  if (keeper_ != nullptr) {
    keep_timer_ = timers_.after(kKeepCheck, [this] { checkKept(); });
  }
}

KernelRuntime::~KernelRuntime() {
  timers_.cancel(keep_timer_);
  for (auto& [id, starting] : starting_) {
    starting->watch.reset();  // kills and reaps the child still setting up
    starting->inst->release(loop_);
  }
  starting_.clear();
  teardowns_.clear();  // what is not removed yet, recovery removes at the next start
  abandonStops();      // likewise: the leftovers' records stay for the next agent
  while (!containers_.empty()) {
    remove(containers_.begin()->first);
  }
  if (leave_running_) {
    return;  // the sandboxes, volumes and records are the next agent's
  }
  for (auto& [uid, p] : pods_) {
    if (p.sandbox) {
      (void)p.sandbox->destroy();  // last resort: recovery removes what is left at the next start
    }
    if (p.volumes) {
      (void)p.volumes->tearDown();  // likewise
    }
  }
}

Result<SandboxInfo> KernelRuntime::createSandbox(const Pod& pod, QosClass qos,
                                                 const std::string& pod_hash) {
  if (auto left = found_.extract(pod.uid); !left.empty()) {
    // A previous agent's pod made anew instead of adopted: its remains go
    // first, or the new sandbox would be built over them.
    log::info("Removing what a previous agent left of the pod", {{"uid", pod.uid}});
    removeNow(left.mapped());
  }
  PodEntry& p = pods_[pod.uid];
  if (p.sandbox && p.record.pod_hash != pod_hash) {
    // An adopted pod now run from another spec: the next agent compares
    // against this one.
    p.record.pod_hash = pod_hash;
    p.record.grace_seconds = pod.termination_grace_period_seconds;
    saveRecord(p);
  }
  if (!p.sandbox) {
    TRY(PodSandbox sb, PodSandbox::create(pod, qos, sandbox_env_));
    p.sandbox = std::move(sb);
    PodRecord& r = p.record;
    r.boot_id = boot_id_;
    r.uid = pod.uid;
    r.namespace_ = pod.namespace_;
    r.name = pod.name;
    r.pod_hash = pod_hash;
    r.qos = qos;
    r.grace_seconds = pod.termination_grace_period_seconds;
    PodSandbox::Layout l = p.sandbox->layout();
    r.cgroup = l.cgroup;
    r.netns_path = l.netns_path;
    r.ip = l.ip;
    r.run_dir = l.run_dir;
    r.hostname = l.hostname;
    saveRecord(p);
  }
  return SandboxInfo{.ip = p.sandbox->ip(),
                     .netns_path = p.sandbox->netnsPath(),
                     .dns_warnings = p.sandbox->dnsWarnings()};
}

void KernelRuntime::saveRecord(PodEntry& pod) {
  if (pod.record.uid.empty()) {
    return;  // no sandbox yet: nothing a next agent could take over
  }
  std::string path = recordPath(config_.root_dir, pod.record.uid);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (auto w = writePodRecord(path, pod.record); !w) {
    // The pod runs on; only a next agent could not adopt it (it would clean it up).
    log::error("Write pod record", {{"path", path}, {"err", w.error().message()}});
  }
}

Result<void> KernelRuntime::setUpVolumes(const Pod& pod, const PodRuntimeInfo& info,
                                         PodObjects* objects) {
  PodEntry& p = pods_[pod.uid];
  if (!p.volumes) {
    TRY(PodVolumes v, PodVolumes::setUp(pod, config_.root_dir + "/pods/" + pod.uid, info, objects));
    p.volumes = std::move(v);
    PodVolumes::Layout l = p.volumes->layout();
    p.record.volumes_dir = l.dir;
    p.record.volume_paths = l.paths;
    p.record.tmpfs = l.tmpfs;
    p.record.projected = l.projected;
    saveRecord(p);
  }
  return {};
}

Result<bool> KernelRuntime::refreshVolumes(const Pod& pod, const PodRuntimeInfo& info,
                                           PodObjects* objects) {
  auto it = pods_.find(pod.uid);
  if (it == pods_.end() || !it->second.volumes) {
    return false;
  }
  return it->second.volumes->refresh(pod, info, objects);
}

void KernelRuntime::destroySandbox(const std::string& pod_uid, std::function<void()> done) {
  auto it = pods_.find(pod_uid);
  if (it == pods_.end()) {
    if (auto left = found_.extract(pod_uid); !left.empty()) {
      // A previous agent's pod whose worker ended before it could adopt it
      // (stopped while it waited for its volumes' objects): what is left of
      // it goes with it, or an agent stopping its pods would leave it running.
      removeNow(left.mapped());
    }
    if (done) {
      done();
    }
    return;
  }
  // The record goes first: a crash from here on leaves garbage for recovery,
  // never a half-removed pod for the next agent to adopt.
  if (!it->second.record.uid.empty()) {
    std::string path = recordPath(config_.root_dir, pod_uid);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      log::error("Remove pod record", {{"path", path}, {"err", std::strerror(errno)}});
    }
  }
  auto volumes = std::make_shared<std::optional<PodVolumes>>(std::move(it->second.volumes));
  std::optional<PodSandbox> sandbox = std::move(it->second.sandbox);
  pods_.erase(it);
  // The volumes go once the pod's processes are gone: they may still be writing.
  auto finish = [volumes, pod_uid, dir = terminationDir(config_.root_dir, pod_uid),
                 done = std::move(done)] {
    if (*volumes) {
      if (auto r = (*volumes)->tearDown(); !r) {
        log::error("Remove pod volumes", {{"uid", pod_uid}, {"err", r.error().message()}});
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);  // the termination-message files
    if (done) {
      done();
    }
  };
  if (!sandbox) {
    return finish();
  }
  // The pod cgroup is killed at once and its emptying awaited on the loop, so
  // a slow exit (a process in D state) does not hold up every other pod.
  uint64_t id = next_id_++;
  teardowns_[id] = sandbox->destroyAsync(
      loop_, timers_, [this, id, pod_uid, finish = std::move(finish)](Result<void> r) {
        if (!r) {
          log::error("Remove pod sandbox", {{"uid", pod_uid}, {"err", r.error().message()}});
        }
        auto self = teardowns_.extract(id);  // destroyed on return, as destroyAsync allows
        finish();
      });
}

void KernelRuntime::ensureImage(const std::string& ref, const std::string& pull_policy,
                                const Result<std::vector<images::RegistryCredentials>>& creds,
                                std::function<void()> pulling,
                                std::function<void(ImageOutcome)> done) {
  auto policy = images::pullPolicy(pull_policy, ref);
  if (!policy) {
    return done({.reason = "InvalidImageName", .message = policy.error().message()});
  }
  auto present = images_.find(ref);
  switch (images::decidePull(*policy, present.has_value())) {
    case images::PullDecision::kUsePresent:
      records_[present->name] = *present;
      return done(found(*present, false));
    case images::PullDecision::kNeverPullAbsent:
      return done(
          {.reason = "ErrImageNeverPull",
           .message = "Container image \"" + ref + "\" is not present with pull policy of Never"});
    case images::PullDecision::kPull:
      break;
  }
  pulling();
  if (!creds) {
    // A pull secret that cannot be read fails the pull, as MakeDockerKeyring's error does.
    return done({.reason = "ErrImagePull", .message = creds.error().message()});
  }
  puller_.pull(
      ref, *creds,
      [this, done = std::move(done)](Result<images::ImageRecord> r, std::chrono::nanoseconds took) {
        if (!r) {
          return done({.reason = "ErrImagePull", .message = r.error().message()});
        }
        records_[r->name] = *r;
        ImageOutcome o = found(*r, true);
        o.pull_time = took;
        done(o);
      });
}

std::expected<std::unique_ptr<Instance>, StartFailure> KernelRuntime::create(
    const ContainerRequest& r, PodEntry& pod) {
  auto inst = std::make_unique<Instance>();
  inst->id = newContainerId();
  inst->pod_uid = r.pod->uid;
  inst->name = r.container->name;
  inst->run.id = inst->id;
  inst->run.restart_count = r.restart_count;
  inst->run.image_name = r.image.name;
  inst->run.image_id = r.image.id;
  inst->run.log_path = r.log_dir + "/" + std::to_string(r.restart_count) + ".log";
  inst->run.rootfs_dir = config_.root_dir + "/containers/" + inst->id;
  auto fail = [&](const std::string& reason, const Error& e) {
    inst->release(loop_);
    dropTerminationFile(inst->run);
    return std::unexpected(StartFailure{.reason = reason, .message = e.message()});
  };
  auto record = records_.find(r.image.name);
  if (record == records_.end()) {
    return fail("CreateContainerError",
                makeError("start container", r.image.name, "the image was not ensured").error());
  }
  auto config = images_.configJson(record->second);
  auto image_config = config ? images::parseImageConfig(*config, record->second.name)
                             : std::unexpected(config.error());
  if (!image_config) {
    return fail("CreateContainerError", image_config.error());
  }
  // lifecycle.stopSignal > the image's STOPSIGNAL > SIGTERM (KEP-4960).
  if (auto sig = linuxStopSignal(r.container->lifecycle.stop_signal)) {
    inst->stop_signal = *sig;
  } else if (!image_config->stop_signal.empty()) {
    if (auto sig = isolation::oci::parseSignal(image_config->stop_signal)) {
      inst->stop_signal = *sig;
    }
  }
  auto rootfs = images::Rootfs::mount(images_.lowerDirs(record->second),
                                      config_.root_dir + "/containers/" + inst->id);
  if (!rootfs) {
    return fail("CreateContainerError", rootfs.error());
  }
  inst->rootfs = std::move(*rootfs);
  auto group = cgroups::Cgroup::create(pod.sandbox->cgroup().path(), inst->id);
  if (!group) {
    return fail("CreateContainerError", group.error());
  }
  inst->cgroup = std::move(*group);
  inst->has_cgroup = true;
  inst->run.cgroup = inst->cgroup.path();
  // The device filter goes on before the process is cloned into the group, so
  // nothing runs there unfiltered; privileged containers get every device, as
  // with containerd. It needs no controller, so --limits-unenforced keeps it, and
  // a filter that fails to load or attach fails the start.
  bool privileged = r.container->security_context.privileged.value_or(false);
  if (auto d = inst->cgroup.applyDeviceRules(privileged ? cgroups::allDevices()
                                                        : cgroups::defaultAllowedDevices());
      !d) {
    return fail("CreateContainerError", d.error());
  }
  inst->resources = r.container->resources;
  if (sandbox_env_.enforce_limits) {
    if (auto l = inst->cgroup.apply(containerCgroupLimits(inst->resources)); !l) {
      return fail("CreateContainerError", l.error());
    }
  }
  ContainerInput in;
  in.pod = r.pod;
  in.container = r.container;
  in.sandbox = &*pod.sandbox;
  in.volumes = &*pod.volumes;
  in.image = *image_config;
  in.rootfs = inst->rootfs.path();
  in.qos = r.qos;
  in.node_memory = node_.capacity_memory;
  in.info = r.info;
  in.objects = r.objects;
  in.services = r.services;
  in.seccomp_dir = config_.root_dir + "/seccomp";
  in.seccomp_default = config_.seccomp_default;
  if (Instance* other = find(r.share_pid_with)) {
    in.pid_ns = "/proc/" + std::to_string(other->proc.pid()) + "/ns/pid";
  }
  in.subpath_mounts = &inst->subpath_mounts;
  if (!r.container->termination_message_path.empty()) {
    // A fresh file per run, so that a message of a run before never shows as
    // this one's. As the kubelet, a file that cannot be made is logged and
    // the container runs without it.
    auto file = createTerminationFile(terminationDir(config_.root_dir, r.pod->uid) + "/" +
                                      r.container->name);
    if (file) {
      in.termination_file = *file;
      inst->run.termination_file = *file;
      inst->run.fallback_to_logs =
          r.container->termination_message_policy == "FallbackToLogsOnError";
    } else {
      log::error("Create termination-log file",
                 {{"container", r.container->name}, {"err", file.error().message()}});
    }
  }
  auto spec = buildContainerSpec(in);
  if (!spec) {
    return fail("CreateContainerConfigError", spec.error());
  }
  inst->spec = std::move(*spec);

  auto log = openLog(r);
  if (!log) {
    return fail("CreateContainerError", log.error());
  }
  inst->log = std::move(*log);
  return inst;
}

// The log: DIR/<restartCount>.log. The container's dead runs beyond what
// container GC keeps (--maximum-dead-containers-per-container, 1 by default:
// the previous run's stays for --previous) go now, rotations and all, rather
// than at the next GC pass: a container crash-looping fast leaves no pile.
Result<std::unique_ptr<isolation::CriLogWriter>> KernelRuntime::openLog(const ContainerRequest& r) {
  std::error_code ec;
  std::filesystem::create_directories(r.log_dir, ec);
  ContainerGcPolicy per_container = config_.container_gc;
  per_container.max_containers = -1;  // the node-wide limit is the GC pass's
  gc::Removed pruned =
      gc::collectContainers({{.dir = r.log_dir, .latest = r.restart_count, .latest_ended = false}},
                            per_container, ::time(nullptr));
  for (const auto& e : pruned.errors) {
    log::error("Remove a dead container's log", {{"err", e}});
  }
  TRY(isolation::CriLogWriter writer,
      isolation::CriLogWriter::open(r.log_dir + "/" + std::to_string(r.restart_count) + ".log"));
  auto log = std::make_unique<isolation::CriLogWriter>(std::move(writer));
  log->rotateAt(config_.container_log_max_size, config_.container_log_max_files);
  return log;
}

void KernelRuntime::startContainer(const ContainerRequest& r,
                                   std::function<void(StartResult)> done) {
  auto pod = pods_.find(r.pod->uid);
  if (pod == pods_.end() || !pod->second.sandbox || !pod->second.volumes) {
    return done(std::unexpected(StartFailure{
        .reason = "CreateContainerError",
        .message = makeError("start container", r.container->name, "the pod has no sandbox")
                       .error()
                       .message()}));
  }
  auto made = create(r, pod->second);
  if (!made) {
    return done(std::unexpected(made.error()));
  }
  std::unique_ptr<Instance> inst = std::move(*made);
  auto start_error = [&](const Error& e) {
    // The runtime's StartError: a run that failed, counted and backed off like a crash.
    inst->release(loop_);
    dropTerminationFile(inst->run);
    done(std::unexpected(
        StartFailure{.reason = "StartError", .message = e.message(), .id = inst->id}));
  };
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    inst->release(loop_);
    dropTerminationFile(inst->run);
    return done(
        std::unexpected(StartFailure{.reason = "CreateContainerError",
                                     .message = sysError("pipe", r.log_dir).error().message()}));
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    inst->release(loop_);
    dropTerminationFile(inst->run);
    return done(
        std::unexpected(StartFailure{.reason = "CreateContainerError",
                                     .message = sysError("pipe", r.log_dir).error().message()}));
  }
  UniqueFd out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]);
  // What the container writes while no agent pumps (between two agents)
  // waits in the pipe: 1 MiB each instead of 64 KiB. Beyond that its writes
  // block until the next agent drains them; nothing is lost. If the kernel
  // refuses (above /proc/sys/fs/pipe-max-size for an unprivileged agent, or
  // the user's pipe quota), the run goes on with the default size.
  for (int fd : {out[1], err[1]}) {
    if (::fcntl(fd, F_SETPIPE_SZ, kLogPipeSize) < 0) {
      log::error("Size log pipe", {{"container", r.container->name},
                                   {"size", std::to_string(kLogPipeSize)},
                                   {"err", std::strerror(errno)}});
    }
  }
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  isolation::ContainerSpec spec = inst->spec;
  spec.stdout_fd = out_w.get();
  spec.stderr_fd = err_w.get();
  auto stdio = inst->stdio.prepare(*r.container, spec, devnull.get());
  if (!stdio) {
    inst->release(loop_);
    dropTerminationFile(inst->run);
    return done(std::unexpected(
        StartFailure{.reason = "CreateContainerError", .message = stdio.error().message()}));
  }
  if (inst->stdio.tty) {
    out_r.reset();  // the terminal is the output: the pipes go unused
    err_r.reset();
  }
  spec.cgroup_fd = inst->cgroup.fd();
  auto pending = isolation::beginStart(spec);
  // The child has its own copies of the write ends (or none): ours go now, so
  // that the log pump sees EOF when the container's last writer is gone.
  // So do the subPath mounts: a child that attached one keeps it in its
  // namespace, one that did not (or never ran) takes it down with its copy.
  inst->subpath_mounts.clear();
  for (auto& m : inst->spec.mounts) {
    m.source_fd = -1;  // closed: an exec's spec must not name it
  }
  out_w.reset();
  err_w.reset();
  stdio->stdin_r.reset();
  stdio->console_child.reset();
  if (!pending) {
    return start_error(pending.error());
  }
  uint64_t id = next_id_++;
  auto starting = std::make_unique<Starting>();
  starting->inst = std::move(inst);
  starting->out_r = std::move(out_r);
  starting->err_r = std::move(err_r);
  starting->stdio = std::move(*stdio);
  starting->done = std::move(done);
  auto watch = isolation::watchStart(
      loop_, timers_, std::move(*pending),
      [this, id](Result<isolation::Process> proc) { started(id, std::move(proc)); });
  if (!watch) {
    // Dropping the pending start (moved into the failed call) killed the child.
    inst = std::move(starting->inst);
    done = std::move(starting->done);
    return start_error(watch.error());
  }
  starting->watch = std::move(*watch);
  starting_[id] = std::move(starting);
}

void KernelRuntime::started(uint64_t id, Result<isolation::Process> proc) {
  auto it = starting_.find(id);
  if (it == starting_.end()) {
    return;
  }
  // Taken out first: `done` may start another container, and the watch ends
  // with this function (isolation::StartWatch allows its done to destroy it).
  std::unique_ptr<Starting> s = std::move(it->second);
  starting_.erase(it);
  std::unique_ptr<Instance> inst = std::move(s->inst);
  auto fail = [&](const Error& e) {
    // The runtime's StartError: a run that failed, counted and backed off like a crash.
    inst->release(loop_);
    dropTerminationFile(inst->run);
    s->done(std::unexpected(
        StartFailure{.reason = "StartError", .message = e.message(), .id = inst->id}));
  };
  if (!proc) {
    return fail(proc.error());
  }
  inst->proc = std::move(*proc);
  inst->run.pid = inst->proc.pid();
  inst->run.start_time = isolation::processStartTime(inst->proc.pid());
  inst->run.started_at = nowRfc3339();
  inst->run.stop_signal = inst->stop_signal;
  inst->run.user = processUser(inst->spec);
  inst->run.stdin = inst->stdio.stdin;
  inst->run.stdin_once = inst->stdio.stdin_once;
  inst->run.tty = inst->stdio.tty;
  auto master = inst->stdio.takeTerminal(s->stdio);
  if (!master) {
    // A terminal no one holds: its output would go nowhere. As a failed pump.
    (void)inst->proc.signal(SIGKILL);  // it may have exited already; wait() reaps either way
    (void)inst->proc.wait();
    return fail(master.error());
  }
  if (inst->stdio.tty) {
    s->out_r = std::move(*master);  // what the log pumps, and the keeper keeps
  }
  inst->pipes[0] = PumpedPipe::of(s->out_r.get());
  inst->pipes[1] = PumpedPipe::of(s->err_r.get());
  if (keeper_ != nullptr) {
    std::vector<int> fds = inst->keptFds();
    if (auto k =
            keeper_->keep(inst->id, inst->run.pid, inst->run.start_time, inst->proc.pidfd(), fds);
        !k) {
      // It runs all the same; it only dies with this agent (no one would hold its pipes).
      log::error("Keep container run", {{"container", inst->name}, {"err", k.error().message()}});
    }
  }
  inst->tapLog();
  auto pumped = inst->stdio.tty ? inst->log->pumpTerminal(loop_, std::move(s->out_r))
                                : inst->log->pump(loop_, std::move(s->out_r), std::move(s->err_r));
  if (!pumped) {
    // Nobody would read the container's output: it would block once a pipe is
    // full. Not a container to keep: killed, reaped and reported as StartError.
    (void)inst->proc.signal(SIGKILL);  // it may have exited already; wait() reaps either way
    (void)inst->proc.wait();
    if (keeper_ != nullptr) {
      keeper_->forget(inst->id);
    }
    return fail(pumped.error());
  }
  recordRun(*inst);
  ContainerHandle h = next_handle_++;
  StartedContainer started{.handle = h,
                           .id = inst->id,
                           .started_at = inst->run.started_at,
                           .pid = inst->proc.pid(),
                           .stop_signal = inst->stop_signal,
                           .resources = inst->resources,
                           .user = inst->run.user.value_or(ProcessUser{})};
  containers_[h] = std::move(inst);
  s->done(std::move(started));
}

Instance* KernelRuntime::find(ContainerHandle h) const {
  auto it = containers_.find(h);
  return it == containers_.end() ? nullptr : it->second.get();
}

Result<void> KernelRuntime::watchExit(ContainerHandle h, std::function<void(ContainerExit)> done) {
  Instance* inst = find(h);
  if (inst == nullptr) {
    return makeError("watch container exit", std::to_string(h), "no such container");
  }
  inst->on_exit = std::move(done);
  if (inst->adopted) {
    return watchAdopted(h, *inst);
  }
  return isolation::watchExit(loop_, inst->proc, &inst->cgroup,
                              [this, h](Result<isolation::ContainerExit> e) {
                                ContainerExit exit;
                                if (e) {
                                  exit.exit_code = e->status.shellStatus();
                                  exit.reason = e->reason();
                                  exit.oom_killed = e->oom_killed;
                                } else {
                                  exit.exit_code = 128;
                                  exit.reason = "Error";
                                  exit.message = e.error().message();
                                }
                                onExited(h, std::move(exit));
                              });
}

void KernelRuntime::onExited(ContainerHandle h, ContainerExit exit) {
  auto it = containers_.find(h);
  if (it == containers_.end()) {
    return;
  }
  std::unique_ptr<Instance> inst = std::move(it->second);
  containers_.erase(it);
  // Recorded before anyone hears of it: an agent that dies in the callback
  // leaves a record that the next one reports the same way.
  inst->run.ended = true;
  inst->run.exit_code = exit.exit_code;
  inst->run.reason = exit.reason;
  inst->run.message = exit.message;
  inst->run.oom_killed = exit.oom_killed;
  inst->run.finished_at = nowRfc3339();
  recordRun(*inst);
  inst->release(loop_);
  if (keeper_ != nullptr) {
    keeper_->forget(inst->id);  // its pipes are drained
  }
  // Its log is complete now: the termination message may come from it.
  addTerminationMessage(inst->run);
  if (inst->run.message != exit.message) {
    exit.message = inst->run.message;
    recordRun(*inst);
  }
  dropTerminationFile(inst->run);
  if (inst->on_exit) {
    inst->on_exit(std::move(exit));
  }
}

Result<void> KernelRuntime::signal(ContainerHandle h, int sig) {
  Instance* inst = find(h);
  if (inst == nullptr) {
    return makeError("kill", std::to_string(h), "no such container");
  }
  return inst->proc.signal(sig);
}

Result<void> KernelRuntime::kill(ContainerHandle h) {
  Instance* inst = find(h);
  if (inst == nullptr) {
    return makeError("kill", std::to_string(h), "no such container");
  }
  // The whole group: a process the container forked dies with it.
  auto killed = inst->cgroup.write("cgroup.kill", "1");
  auto signalled = inst->proc.signal(SIGKILL);
  return killed ? signalled : killed;
}

void KernelRuntime::remove(ContainerHandle h) {
  auto it = containers_.find(h);
  if (it == containers_.end()) {
    return;
  }
  std::unique_ptr<Instance> inst = std::move(it->second);
  containers_.erase(it);
  loop_.remove(inst->proc.pidfd());
  if (leave_running_) {
    return inst->leave(loop_);
  }
  // Best effort on the way out: a kill that fails found the process gone, and
  // wait() then reaps it all the same.
  (void)inst->cgroup.write("cgroup.kill", "1");
  (void)inst->proc.wait();
  inst->release(loop_);
  if (keeper_ != nullptr) {
    keeper_->forget(inst->id);
  }
}

Result<std::unique_ptr<ExecProcess>> KernelRuntime::exec(ContainerHandle h,
                                                         const std::vector<std::string>& argv,
                                                         const ExecIo& io,
                                                         std::chrono::milliseconds setup_timeout) {
  Instance* inst = find(h);
  if (inst == nullptr) {
    return makeError("exec probe", "", "the container is not running");
  }
  TRY_VOID(specFor(*inst));  // an adopted run's, on its first exec
  isolation::ContainerSpec e = isolation::execSpec(inst->spec, inst->proc.pid(), argv);
  UniqueFd devnull;
  if (io.tty) {
    // The terminal is made in the container and is 0, 1 and 2 (buildPlan
    // refuses other stdio beside it).
    e.terminal = true;
    e.console_socket_fd = io.console_socket;
    e.stdin_fd = io.stdin_fd;
    e.stdout_fd = io.stdout_fd;
    e.stderr_fd = io.stderr_fd;
    if (io.rows != 0 && io.cols != 0) {
      e.console_size = isolation::ConsoleSize{io.rows, io.cols};
    }
  } else {
    e.console_socket_fd = io.console_socket;  // refused by buildPlan if given
    if (io.stdin_fd < 0 || io.stdout_fd < 0 || io.stderr_fd < 0) {
      devnull.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
      if (!devnull) {
        return sysError("open", "/dev/null");
      }
    }
    e.stdin_fd = io.stdin_fd >= 0 ? io.stdin_fd : devnull.get();
    e.stdout_fd = io.stdout_fd >= 0 ? io.stdout_fd : devnull.get();
    e.stderr_fd = io.stderr_fd >= 0 ? io.stderr_fd : devnull.get();
  }
  e.cgroup_fd = inst->cgroup.fd();
  e.setup_timeout = setup_timeout;
  TRY(isolation::PendingStart pending, isolation::beginStart(e));
  return PendingExec::watch(loop_, timers_, std::move(pending), io.started);
}

Result<ContainerStats> KernelRuntime::stats(ContainerHandle h) {
  Instance* inst = find(h);
  if (inst == nullptr) {
    return makeError("container stats", std::to_string(h), "no such container");
  }
  TRY(cgroups::Stats s, inst->cgroup.stats());
  return ContainerStats{.cpu_usage_usec = s.cpu_usage_usec,
                        .memory_working_set = s.memory_working_set,
                        .memory_current = s.memory_current};
}

}  // namespace kernelet::agent::runtime
