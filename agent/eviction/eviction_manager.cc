#include "agent/eviction/eviction_manager.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <tuple>

#include "agent/log/log.h"
#include "agent/stats/cgroup_stats.h"
#include "agent/stats/fs_usage.h"

namespace kernelet::agent::eviction {
namespace {

// The PSI trigger: 100 ms of stall within a 1 s window (root may use windows
// under 2 s). Pods stalling that long on reclaim are close to the limit.
constexpr const char* kPsiTrigger = "some 100000 1000000";

std::string podName(const PodUsage& p) { return p.namespace_ + "/" + p.name; }

}  // namespace

std::unique_ptr<EvictionManager> EvictionManager::start(EventLoop& loop, TimerQueue& timers,
                                                        const AgentConfig& config,
                                                        Settings settings, Hooks hooks) {
  std::unique_ptr<EvictionManager> m(
      new EvictionManager(loop, timers, config, std::move(settings), std::move(hooks)));
  // A first cycle at once: the conditions the node reports are the
  // manager's from the start.
  EvictionManager* raw = m.get();
  m->monitor_timer_ = timers.after(std::chrono::milliseconds(0), [raw] {
    raw->monitor_timer_ = 0;
    raw->synchronize();
    raw->armMonitoring();
  });
  if (raw->hooks_.pressure) {
    raw->hooks_.pressure(raw->pressure_);
  }
  if (m->has_memory_rule_) {
    m->armMemoryCheck();
    m->armPsiTrigger();
  }
  return m;
}

EvictionManager::EvictionManager(EventLoop& loop, TimerQueue& timers, const AgentConfig& config,
                                 Settings settings, Hooks hooks)
    : loop_(loop),
      timers_(timers),
      settings_(std::move(settings)),
      hooks_(std::move(hooks)),
      tracker_(rulesOf(config), std::chrono::seconds(config.eviction_pressure_transition_seconds)),
      max_pod_grace_(config.eviction_max_pod_grace_seconds) {
  for (const Rule& r : tracker_.rules()) {
    has_memory_rule_ = has_memory_rule_ || r.signal == "memory.available";
  }
}

EvictionManager::~EvictionManager() {
  timers_.cancel(monitor_timer_);
  timers_.cancel(memory_timer_);
  if (psi_.get() >= 0) {
    loop_.remove(psi_.get());
  }
}

Observations EvictionManager::observe() const {
  Observations obs;
  auto now = std::chrono::system_clock::now();
  if (auto n = stats::readNode(settings_.cgroup_mount, settings_.proc, now)) {
    obs["memory.available"] = {static_cast<int64_t>(n->available),
                               static_cast<int64_t>(n->memory_total)};
    if (n->pid_max && n->processes) {
      auto max = static_cast<int64_t>(*n->pid_max);
      obs["pid.available"] = {max - static_cast<int64_t>(*n->processes), max};
    }
  }
  for (auto [prefix, dir] :
       {std::pair{"nodefs", &settings_.nodefs_dir}, std::pair{"imagefs", &settings_.imagefs_dir}}) {
    if (dir->empty()) {
      continue;
    }
    if (auto c = stats::fsCapacity(*dir)) {
      obs[std::string(prefix) + ".available"] = {static_cast<int64_t>(c->available),
                                                 static_cast<int64_t>(c->capacity)};
      obs[std::string(prefix) + ".inodesFree"] = {static_cast<int64_t>(c->inodes_free),
                                                  static_cast<int64_t>(c->inodes)};
    }
  }
  return obs;
}

void EvictionManager::armMonitoring() {
  monitor_timer_ = timers_.after(settings_.monitoring, [this] {
    monitor_timer_ = 0;
    nothing_to_evict_ = false;
    synchronize();
    armMonitoring();
  });
}

void EvictionManager::armMemoryCheck() {
  memory_timer_ = timers_.after(settings_.memory_check, [this] {
    memory_timer_ = 0;
    checkMemory("poll");
    armMemoryCheck();
  });
}

void EvictionManager::armPsiTrigger() {
  if (settings_.kubepods.empty()) {
    return;
  }
  std::string path = settings_.cgroup_mount + "/" + settings_.kubepods + "/memory.pressure";
  int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 || ::write(fd, kPsiTrigger, std::strlen(kPsiTrigger) + 1) < 0) {
    // No PSI (CONFIG_PSI off, psi=0): the 500 ms look is what there is.
    log::v(2, "Eviction manager: no memory pressure trigger",
           {{"path", path}, {"err", std::strerror(errno)}});
    if (fd >= 0) {
      ::close(fd);
    }
    return;
  }
  psi_.reset(fd);
  auto added = loop_.add(fd, EPOLLPRI, [this](uint32_t events) {
    if ((events & EPOLLERR) != 0) {  // the group went
      loop_.remove(psi_.get());
      psi_.reset();
      return;
    }
    checkMemory("psi");
  });
  if (!added) {
    psi_.reset();
  }
}

void EvictionManager::checkMemory(const char* by) {
  if (in_cycle_ || nothing_to_evict_ || Clock::now() - last_cycle_ < settings_.memory_check) {
    return;
  }
  Observations obs;
  auto now = std::chrono::system_clock::now();
  auto n = stats::readNode(settings_.cgroup_mount, settings_.proc, now);
  if (!n) {
    return;
  }
  obs["memory.available"] = {static_cast<int64_t>(n->available),
                             static_cast<int64_t>(n->memory_total)};
  bool crossed = false;
  for (const Rule& r : tracker_.rules()) {
    crossed = crossed || (r.signal == "memory.available" && met(r, obs, false));
  }
  // Met, or the pod evicted last is gone: measure again at once.
  if (crossed || (!waiting_for_.empty() && hooks_.terminated(waiting_for_))) {
    log::v(4, "Eviction manager: memory threshold crossed",
           {{"by", by}, {"available", std::to_string(n->available)}});
    synchronize();
  }
}

bool EvictionManager::waitingForCleanup() {
  if (waiting_for_.empty()) {
    return false;
  }
  if (hooks_.terminated(waiting_for_)) {
    log::info("Eviction manager: pods successfully cleaned up", {{"podUID", waiting_for_}});
    waiting_for_.clear();
    return false;
  }
  if (Clock::now() - waiting_since_ > settings_.cleanup_timeout) {
    log::info("Eviction manager: timed out waiting for pods to be cleaned up",
              {{"podUID", waiting_for_}});
    waiting_for_.clear();
    return false;
  }
  return true;
}

void EvictionManager::synchronize() {
  if (in_cycle_) {
    return;
  }
  in_cycle_ = true;
  last_cycle_ = Clock::now();
  struct Done {
    bool& flag;
    ~Done() { flag = false; }
  } done{in_cycle_};

  Observations obs = observe();
  Tracker::Outcome out = tracker_.observe(obs, Clock::now());
  if (out.pressure != pressure_) {
    for (auto [type, was, is] :
         {std::tuple{"MemoryPressure", pressure_.memory, out.pressure.memory},
          std::tuple{"DiskPressure", pressure_.disk, out.pressure.disk},
          std::tuple{"PIDPressure", pressure_.pid, out.pressure.pid}}) {
      if (was != is) {
        log::info("Eviction manager: node condition changed",
                  {{"condition", type}, {"status", is ? "True" : "False"}});
      }
    }
    pressure_ = out.pressure;
    if (hooks_.pressure) {
      hooks_.pressure(pressure_);
    }
  }
  if (waitingForCleanup()) {
    return;  // one pod at a time: measure again once it is gone
  }
  std::vector<PodUsage> pods = hooks_.pods();
  if (evictLocalStorage(pods)) {
    return;
  }
  std::optional<Rule> rule = toReclaim(out.actionable);
  if (!rule) {
    return;
  }
  std::string resource = resourceOf(rule->signal);
  log::info("Eviction manager: attempting to reclaim", {{"resourceName", resource}});
  if (resource != "memory" && resource != "pids" && hooks_.reclaim) {
    hooks_.reclaim(rule->signal);
    obs = observe();
    if (!met(*rule, obs, false)) {
      log::info("Eviction manager: able to reduce resource pressure without evicting pods.",
                {{"resourceName", resource}});
      return;
    }
  }
  if (resource != "memory" && resource != "pids" && hooks_.refresh_disk) {
    hooks_.refresh_disk();
    pods = hooks_.pods();
  }
  nothing_to_evict_ = !evictFor(*rule, obs, pods);
}

bool EvictionManager::evictLocalStorage(std::vector<PodUsage>& pods) {
  bool evicted = false;
  for (const PodUsage& p : pods) {
    if (p.critical) {
      continue;
    }
    if (auto message = localStorageViolation(p)) {
      if (hooks_.evict(p, 0, *message)) {
        evicted = true;
        waiting_for_ = p.uid;
        waiting_since_ = Clock::now();
      }
    }
  }
  return evicted;
}

bool EvictionManager::evictFor(const Rule& rule, const Observations& obs,
                               std::vector<PodUsage>& pods) {
  std::string resource = resourceOf(rule.signal);
  std::vector<size_t> order = rank(resource, pods);
  std::string ranked;
  for (size_t i : order) {
    ranked += (ranked.empty() ? "" : ",") + podName(pods[i]);
  }
  log::info("Eviction manager: pods ranked for eviction",
            {{"pods", "[" + ranked + "]"}, {"resourceName", resource}});
  const Observation& seen = obs.at(rule.signal);
  for (size_t i : order) {
    const PodUsage& p = pods[i];
    if (p.critical) {
      log::error("Eviction manager: cannot evict a critical pod", {{"pod", podName(p)}});
      continue;
    }
    int64_t grace = 0;  // hard: at once
    if (!rule.hard) {
      grace = std::min(max_pod_grace_, p.termination_grace);
    }
    std::string message = evictionMessage(resource, p, rule.amount(seen.capacity), seen.available);
    if (hooks_.evict(p, grace, message)) {
      log::info("Eviction manager: pod is evicted successfully", {{"pod", podName(p)}});
      waiting_for_ = p.uid;
      waiting_since_ = Clock::now();
      return true;
    }
  }
  log::info("Eviction manager: unable to evict any pods from the node");
  return false;
}

}  // namespace kernelet::agent::eviction
