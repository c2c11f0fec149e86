// A previous agent's pods that no adopt() took (their pods are gone from the
// sources while no agent ran): stopped from their records alone, as the
// previous agent would have stopped them - each run's stop signal, what is
// left of the grace period, then SIGKILL - and removed.
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "agent/runtime/instance.h"
#include "agent/runtime/kernel_runtime.h"
#include "isolation/oci_state.h"
#include "sys/syscalls.h"

namespace kernelet::agent::runtime {

std::vector<LeftoverPod> KernelRuntime::leftovers() const {
  std::vector<LeftoverPod> out;
  out.reserve(found_.size());
  for (const auto& [uid, r] : found_) {
    out.push_back({.uid = uid, .namespace_ = r.namespace_, .name = r.name});
  }
  return out;
}

void KernelRuntime::stopLeftover(const std::string& pod_uid, std::function<void()> done) {
  auto it = found_.find(pod_uid);
  if (it == found_.end() || stopping_.contains(pod_uid)) {
    if (done) {
      done();
    }
    return;
  }
  auto stop = std::make_unique<LeftoverStop>();
  stop->record = std::move(it->second);
  stop->done = std::move(done);
  found_.erase(it);
  LeftoverStop& s = *stop;
  stopping_[pod_uid] = std::move(stop);
  for (const auto& [name, c] : s.record.containers) {
    if (!c.latest || c.latest->ended) {
      continue;
    }
    const RunRecord& run = *c.latest;
    auto inst = std::make_unique<Instance>();
    inst->id = run.id;
    inst->name = name;
    inst->run = run;
    inst->rootfs = images::Rootfs::adopt(run.rootfs_dir);
    std::optional<KeptRun> kept;
    if (keeper_ != nullptr) {
      if (auto f = keeper_->fetch(run.id); f) {
        kept = std::move(*f);
      }
    }
    UniqueFd pidfd;
    if (kept && kept->pidfd) {
      pidfd = std::move(kept->pidfd);
    } else if (int fd = sys::pidfdOpen(run.pid); fd >= 0) {
      pidfd = UniqueFd(fd);
      if (isolation::processStartTime(run.pid) != run.start_time) {
        pidfd.reset();
      }
    }
    // What it writes until it is gone still reaches its log.
    inst->adoptKept(run, kept);
    inst->log = reopenLog(run, kept);
    inst->proc = isolation::Process(run.pid, std::move(pidfd));
    int fd = inst->proc.pidfd();
    if (fd >= 0 && inst->proc.signal(run.stop_signal)) {
      auto added = loop_.add(fd, EPOLLIN, [this, pod_uid, fd](uint32_t) {
        loop_.remove(fd);
        auto st = stopping_.find(pod_uid);
        if (st != stopping_.end() && --st->second->running == 0) {
          leftoverStopped(pod_uid);
        }
      });
      if (added) {
        s.running++;
      }
    }
    s.runs.push_back(std::move(inst));
  }
  if (s.running == 0) {
    return leftoverStopped(pod_uid);
  }
  // SIGKILL when the grace period the previous agent gave ends, or after the
  // whole recorded grace period when it was not terminating the pod yet.
  auto now = std::chrono::system_clock::now();
  auto kill_at = s.record.kill_at_unix_ms
                     ? std::chrono::system_clock::time_point(
                           std::chrono::milliseconds(*s.record.kill_at_unix_ms))
                     : now + std::chrono::seconds(s.record.grace_seconds);
  auto wait = std::max(kill_at - now, std::chrono::system_clock::duration::zero());
  s.timer = timers_.after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait),
                          [this, pod_uid] {
                            if (auto st = stopping_.find(pod_uid); st != stopping_.end()) {
                              st->second->timer = 0;
                              leftoverStopped(pod_uid);
                            }
                          });
}

void KernelRuntime::leftoverStopped(const std::string& uid) {
  auto node = stopping_.extract(uid);
  if (node.empty()) {
    return;
  }
  std::unique_ptr<LeftoverStop> s = std::move(node.mapped());
  if (s->timer != 0) {
    timers_.cancel(s->timer);
  }
  for (auto& inst : s->runs) {
    if (inst->proc.pidfd() >= 0) {
      loop_.remove(inst->proc.pidfd());
      (void)inst->proc.signal(SIGKILL);  // past the grace period, or gone already
      (void)inst->proc.tryWait();        // our child only in a runtime restarted in-process
    }
    // The run's own cgroup goes with the pod's; its log is drained and its rootfs unmounted.
    inst->release(loop_);
    if (keeper_ != nullptr) {
      keeper_->forget(inst->id);
    }
  }
  const PodRecord& r = s->record;
  std::string path = recordPath(config_.root_dir, uid);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    log::error("Remove pod record", {{"path", path}, {"err", std::strerror(errno)}});
  }
  PodEntry& entry = pods_[uid];
  entry.sandbox = PodSandbox::remains(sandboxLayout(r), sandbox_env_);
  if (!r.volumes_dir.empty()) {
    entry.volumes = PodVolumes::adopt({.dir = r.volumes_dir,
                                       .paths = r.volume_paths,
                                       .tmpfs = r.tmpfs,
                                       .projected = r.projected});
  }
  // The pod cgroup is killed (what ignored SIGTERM and outlived SIGKILL's
  // delivery) and awaited on the loop, like any pod's.
  destroySandbox(uid, std::move(s->done));
}

void KernelRuntime::abandonStops() {
  for (auto& [uid, s] : stopping_) {
    if (s->timer != 0) {
      timers_.cancel(s->timer);
    }
    for (auto& inst : s->runs) {
      if (inst->proc.pidfd() >= 0) {
        loop_.remove(inst->proc.pidfd());
      }
      inst->leave(loop_);
    }
  }
  stopping_.clear();
}

void KernelRuntime::removeNow(const PodRecord& r) {
  std::string path = recordPath(config_.root_dir, r.uid);
  ::unlink(path.c_str());  // gone already is fine
  // The pod cgroup first: its cgroup.kill ends every process of the pod
  // (blocking until they are gone), so nothing runs in a rootfs or volume
  // when those go.
  PodSandbox sandbox = PodSandbox::remains(sandboxLayout(r), sandbox_env_);
  if (auto d = sandbox.destroy(); !d) {
    log::error("Remove pod sandbox", {{"uid", r.uid}, {"err", d.error().message()}});
  }
  for (const auto& [name, c] : r.containers) {
    for (const auto* run : {&c.latest, &c.previous}) {
      if (!*run) {
        continue;
      }
      if (auto rm = images::Rootfs::adopt((*run)->rootfs_dir).remove(); !rm) {
        log::error("Remove container rootfs", {{"container", name}, {"err", rm.error().message()}});
      }
      if (keeper_ != nullptr) {
        keeper_->forget((*run)->id);
      }
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(terminationDir(config_.root_dir, r.uid), ec);
  if (!r.volumes_dir.empty()) {
    PodVolumes v = PodVolumes::adopt({.dir = r.volumes_dir,
                                      .paths = r.volume_paths,
                                      .tmpfs = r.tmpfs,
                                      .projected = r.projected});
    if (auto t = v.tearDown(); !t) {
      log::error("Remove pod volumes", {{"uid", r.uid}, {"err", t.error().message()}});
    }
  }
}

}  // namespace kernelet::agent::runtime
