#include "agent/node/shutdown_manager.h"

#include <sys/epoll.h>

#include <algorithm>
#include <filesystem>

#include "agent/log/log.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

constexpr const char* kLogind = "org.freedesktop.login1";
constexpr const char* kLogindPath = "/org/freedesktop/login1";
constexpr const char* kLogindManager = "org.freedesktop.login1.Manager";
// The kubelet's words for its lock, which `systemd-inhibit --list` shows.
constexpr const char* kInhibitWhy = "Kubelet needs time to handle node shutdown";
constexpr int32_t kSystemCriticalPriority = 2000000000;
constexpr int kRecheckAttempts = 5;

bool isSystemCriticalClass(const std::string& name) {
  return name == "system-node-critical" || name == "system-cluster-critical";
}

}  // namespace

bool isCriticalPod(const Pod& pod) {
  if (pod.priority) {
    return *pod.priority >= kSystemCriticalPriority;
  }
  return isSystemCriticalClass(pod.priority_class_name);
}

int64_t shutdownGrace(const Pod& pod, int64_t group_seconds) {
  return std::min(pod.termination_grace_period_seconds, group_seconds);
}

void markShutDown(PodStatus& status, const std::string& now) {
  if (status.phase != "Succeeded") {
    status.phase = "Failed";
  }
  status.reason = kNodeShutdownReason;
  status.message = kNodeShutdownMessage;
  PodCondition target{.type = "DisruptionTarget",
                      .status = "True",
                      .reason = "TerminationByKubelet",
                      .message = kNodeShutdownMessage,
                      .last_transition_time = now};
  auto it = std::find_if(status.conditions.begin(), status.conditions.end(),
                         [](const PodCondition& c) { return c.type == "DisruptionTarget"; });
  if (it == status.conditions.end()) {
    status.conditions.push_back(target);
  } else if (it->status != "True") {
    *it = target;
  }
}

std::unique_ptr<ShutdownManager> ShutdownManager::start(EventLoop& loop, TimerQueue& timers,
                                                        Settings settings,
                                                        TerminatePods terminate) {
  if (settings.grace_seconds <= 0) {
    log::v(1, "No graceful configuration specified, node shutdown will be immediate");
    return nullptr;
  }
  std::unique_ptr<ShutdownManager> m(
      new ShutdownManager(loop, timers, std::move(settings), std::move(terminate)));
  log::info(
      "Creating node shutdown manager",
      {{"shutdownGracePeriodRequested", std::to_string(m->settings_.grace_seconds) + "s"},
       {"shutdownGracePeriodCriticalPods", std::to_string(m->settings_.critical_seconds) + "s"}});
  m->connect(true);
  return m;
}

ShutdownManager::~ShutdownManager() {
  timers_.cancel(group_timer_);
  timers_.cancel(retry_timer_);
  if (bus_) {
    loop_.remove(bus_->fd());
  }
}

void ShutdownManager::connect(bool first) {
  retry_timer_ = 0;
  auto failed = [&](const Error& e) {
    disconnect(false);
    if (first) {
      // As the kubelet: the feature is not critical; the node runs without it.
      log::error("Failed to start node shutdown manager, node shutdown will not wait for the pods",
                 {{"err", e.message()}});
      return;
    }
    log::v(1, "Restarting watch for node shutdown events", {{"err", e.message()}});
    retry_timer_ = timers_.after(settings_.reconnect_after, [this] { connect(false); });
  };
  auto bus = dbus::Connection::open(settings_.bus_address, settings_.call_timeout);
  if (!bus) {
    return failed(bus.error());
  }
  bus_ = std::move(*bus);
  auto delay = inhibitDelayMax();
  if (!delay) {
    return failed(delay.error());
  }
  auto wanted = std::chrono::seconds(settings_.grace_seconds);
  if (*delay >= wanted) {
    return watch();
  }
  log::info("logind's InhibitDelayMaxUSec is shorter than shutdownGracePeriod: raising it",
            {{"InhibitDelayMaxUSec", std::to_string(delay->count())},
             {"shutdownGracePeriod", std::to_string(settings_.grace_seconds) + "s"}});
  if (auto r = raiseInhibitDelay(); !r) {
    return failed(r.error());
  }
  recheck(kRecheckAttempts);
}

// logind reloads on SIGHUP asynchronously: read the value again a few times.
void ShutdownManager::recheck(int attempts_left) {
  retry_timer_ = 0;
  auto delay = inhibitDelayMax();
  if (delay && *delay >= std::chrono::seconds(settings_.grace_seconds)) {
    return watch();
  }
  if (delay && attempts_left > 1) {
    retry_timer_ = timers_.after(settings_.recheck_every,
                                 [this, attempts_left] { recheck(attempts_left - 1); });
    return;
  }
  disconnect(true);
  log::error(
      "Failed to start node shutdown manager, node shutdown will not wait for the pods",
      {{"err", delay ? "logind's InhibitDelayMaxUSec is still " + std::to_string(delay->count()) +
                           "us after a reload, less than shutdownGracePeriod " +
                           std::to_string(settings_.grace_seconds) +
                           "s (a logind.conf.d drop-in that sorts later may set it)"
                     : delay.error().message()}});
}

Result<std::chrono::microseconds> ShutdownManager::inhibitDelayMax() {
  TRY(dbus::Received r, bus_->call({.destination = kLogind,
                                    .path = kLogindPath,
                                    .interface = "org.freedesktop.DBus.Properties",
                                    .member = "Get",
                                    .args = {{'s', kLogindManager}, {'s', "InhibitDelayMaxUSec"}}},
                                   settings_.call_timeout));
  dbus::Reader reader(r.message.body, r.message.signature, r.message.big_endian);
  TRY(dbus::Reader value, reader.readVariant());
  TRY(uint64_t us, addContext(value.readU64(), "logind's InhibitDelayMaxUSec"));
  return std::chrono::microseconds(static_cast<int64_t>(std::min<uint64_t>(us, INT64_MAX)));
}

// The kubelet's way: a logind.conf.d drop-in, then systemd sends logind SIGHUP.
Result<void> ShutdownManager::raiseInhibitDelay() {
  std::error_code ec;
  std::filesystem::create_directories(settings_.logind_conf_dir, ec);
  if (ec) {
    return makeError("mkdir", settings_.logind_conf_dir, ec.message());
  }
  std::string path = settings_.logind_conf_dir + "/99-kernelet.conf";
  TRY_VOID(writeFileAtomic(path, "# kernelet: shutdownGracePeriod\n[Login]\nInhibitDelayMaxSec=" +
                                     std::to_string(settings_.grace_seconds) + "\n"));
  TRY_VOID(bus_->call({.destination = "org.freedesktop.systemd1",
                       .path = "/org/freedesktop/systemd1",
                       .interface = "org.freedesktop.systemd1.Manager",
                       .member = "KillUnit",
                       .args = {{'s', "systemd-logind.service"}, {'s', "all"}, {'i', "", 1}}},
                      settings_.call_timeout));
  return {};
}

void ShutdownManager::watch() {
  auto r = takeLock();
  if (r) {
    auto added = bus_->call(
        {.destination = "org.freedesktop.DBus",
         .path = "/org/freedesktop/DBus",
         .interface = "org.freedesktop.DBus",
         .member = "AddMatch",
         .args = {{'s', std::string("type='signal',sender='") + kLogind + "',path='" + kLogindPath +
                            "',interface='" + kLogindManager + "',member='PrepareForShutdown'"}}},
        settings_.call_timeout);
    if (!added) {
      r = std::unexpected(added.error());
    }
  }
  if (r) {
    r = loop_.add(bus_->fd(), EPOLLIN, [this](uint32_t) { onReadable(); });
  }
  if (!r) {
    disconnect(true);
    log::error("Failed to start node shutdown manager, node shutdown will not wait for the pods",
               {{"err", r.error().message()}});
    return;
  }
  log::info("Watching for node shutdown (systemd-logind delay lock taken)");
}

Result<void> ShutdownManager::takeLock() {
  TRY(dbus::Received r,
      bus_->call(
          {.destination = kLogind,
           .path = kLogindPath,
           .interface = kLogindManager,
           .member = "Inhibit",
           .args = {{'s', "shutdown"}, {'s', "kernelet"}, {'s', kInhibitWhy}, {'s', "delay"}}},
          settings_.call_timeout));
  dbus::Reader reader(r.message.body, r.message.signature, r.message.big_endian);
  TRY(uint32_t index, addContext(reader.readFdIndex(), "logind's Inhibit reply"));
  if (index >= r.fds.size()) {
    return makeError("Inhibit", kLogind, "the reply names an fd it did not pass");
  }
  lock_ = std::move(r.fds[index]);
  return {};
}

void ShutdownManager::onReadable() {
  auto signals = bus_->readSignals();
  if (!signals) {
    // logind or the bus restarted: a lock is gone with the connection anyway.
    log::warning("Lost the system bus", {{"err", signals.error().message()}});
    disconnect(false);
    retry_timer_ = timers_.after(settings_.reconnect_after, [this] { connect(false); });
    return;
  }
  for (const dbus::Received& s : *signals) {
    const dbus::Message& m = s.message;
    if (m.interface != kLogindManager || m.member != "PrepareForShutdown" ||
        m.path != kLogindPath) {
      continue;
    }
    dbus::Reader reader(m.body, m.signature, m.big_endian);
    auto active = reader.readBool();
    if (!active) {
      log::error("Failed obtaining shutdown event", {{"err", active.error().message()}});
      continue;
    }
    onPrepareForShutdown(*active);
  }
}

void ShutdownManager::onPrepareForShutdown(bool active) {
  log::info(active ? "Shutdown manager detected shutdown event"
                   : "Shutdown manager detected shutdown cancellation");
  if (!active) {
    // A cancelled shutdown: the pods stopped so far stay stopped (as with the
    // kubelet); the next shutdown must wait for us again.
    shutting_down_ = false;
    if (!holdsLock() && bus_) {
      if (auto r = takeLock(); !r) {
        log::error("Could not take the shutdown delay lock again", {{"err", r.error().message()}});
      }
    }
    return;
  }
  if (shutting_down_ || !holdsLock()) {
    return;  // already under way, or released: the shutdown waits for no one
  }
  shutting_down_ = true;
  stopGroup(false);
}

// Non-critical pods get (grace - critical) seconds, critical ones `critical`;
// the next group starts when every pod of this one terminated or its time is up.
void ShutdownManager::stopGroup(bool critical) {
  uint64_t round = ++round_;
  int64_t seconds =
      critical ? settings_.critical_seconds : settings_.grace_seconds - settings_.critical_seconds;
  log::v(1, "Shutdown manager killing pods",
         {{"critical", critical ? "true" : "false"}, {"gracePeriod", std::to_string(seconds)}});
  group_timer_ = timers_.after(std::chrono::seconds(seconds), [this, critical, round] {
    group_timer_ = 0;
    log::v(1, "Shutdown manager pod killing time out", {{"critical", critical ? "true" : "false"}});
    groupDone(critical, round);
  });
  terminate_(critical, seconds, [this, critical, round] { groupDone(critical, round); });
}

void ShutdownManager::groupDone(bool critical, uint64_t round) {
  if (round != round_) {
    return;  // the group's other ending (its timer or its pods) came first
  }
  round_++;
  timers_.cancel(group_timer_);
  group_timer_ = 0;
  if (!critical) {
    stopGroup(true);
    return;
  }
  lock_.reset();
  log::info("Shutdown manager completed processing shutdown event, node will shutdown shortly");
}

// The lock is logind's fifo, not the connection: it holds across a lost bus
// (a reconnect takes a new one and closes this). `release` drops it too.
void ShutdownManager::disconnect(bool release) {
  if (bus_) {
    loop_.remove(bus_->fd());
  }
  bus_.reset();
  if (release) {
    lock_.reset();
  }
}

}  // namespace kernelet::agent
