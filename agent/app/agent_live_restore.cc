// The agent's part of live restore (issue #16): leaving the pods running when
// it exits, and stopping the pods a previous agent left that no source wants.
// Adoption itself is the pod workers' (lifecycle/adoption.cc).
#include <filesystem>

#include "agent/app/agent.h"
#include "agent/log/log.h"
#include "agent/model/pod_names.h"

namespace kernelet::agent {
namespace {

// A name fit to be one path component (the runtime read it from a state file).
bool safeComponent(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

}  // namespace

void Agent::leavePodsRunning(int signo) {
  size_t pods = 0;
  for (const auto& [uid, w] : workers_) {
    pods += w->active() ? 1 : 0;
  }
  log::info("Stop signal: exiting, leaving the pods running for the next agent",
            {{"signal", std::to_string(signo)}});
  // From here the workers' destructors release their containers and sandboxes
  // instead of removing them (runtime.h leaveRunning); timers and probes die
  // with the workers (an exec probe in flight is killed, its container is not).
  runtime_->leaveRunning();
  ctx_.leaving = true;
  status_files_->flush();  // the next agent reads them back (readiness)
  leaving_ = true;
  log::info("Leaving " + std::to_string(pods) + " pods running",
            {{"stopping", std::to_string(leftovers_stopping_.size())}});
}

bool Agent::sourcesSynced() const {
  // The manifest directory is read whole when it is opened (create).
  return cluster_ == nullptr || api_synced_;
}

void Agent::stopLeftovers() {
  if (!stopping_ && !sourcesSynced()) {
    return;
  }
  for (const auto& l : runtime_->leftovers()) {
    if (leftovers_stopping_.contains(l.uid)) {
      continue;
    }
    auto w = workers_.find(l.uid);
    if (!stopping_ && w != workers_.end() && w->second->active()) {
      continue;  // wanted: its worker adopts it once it can start
    }
    leftovers_stopping_.insert(l.uid);
    log::info("Stopping a pod a previous agent left that no source wants",
              {{"pod", l.namespace_ + "/" + l.name}, {"uid", l.uid}});
    runtime_->stopLeftover(l.uid, [this, l] {
      leftovers_stopping_.erase(l.uid);
      if (!workers_.contains(l.uid) && isDnsSubdomain(l.namespace_) && isDnsSubdomain(l.name) &&
          safeComponent(l.uid)) {
        // What the agent kept of it: its status file and its logs.
        std::error_code ec;
        std::filesystem::remove_all(ctx_.config.root_dir + "/pods/" + l.uid, ec);
        std::filesystem::remove_all(
            ctx_.config.pod_log_dir + "/" + l.namespace_ + "_" + l.name + "_" + l.uid, ec);
      }
      log::v(2, "Stopped a previous agent's pod", {{"uid", l.uid}});
    });
  }
}

}  // namespace kernelet::agent
