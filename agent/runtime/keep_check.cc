// The keeper holds every live run: see KernelRuntime::checkKept.
#include <set>

#include "agent/log/log.h"
#include "agent/runtime/instance.h"
#include "agent/runtime/kernel_runtime.h"

namespace kernelet::agent::runtime {

void KernelRuntime::checkKept() {
  keep_timer_ = timers_.after(kKeepCheck, [this] { checkKept(); });
  if (keeper_ == nullptr || leave_running_) {
    return;
  }
  // A holder that died is replaced by this call (HolderKeeper), empty.
  auto ids = keeper_->list();
  if (!ids) {
    log::error("List the runs the holder keeps", {{"err", ids.error().message()}});
    return;
  }
  std::set<std::string> kept(ids->begin(), ids->end());
  int again = 0;
  for (const auto& [h, inst] : containers_) {
    // A run whose stream closed cannot be kept whole; it has nothing more to
    // say on that stream, but its exit would still be lost with the agent.
    std::vector<int> fds = inst->keptFds();
    if (kept.contains(inst->id) || fds.empty()) {
      continue;
    }
    if (auto k =
            keeper_->keep(inst->id, inst->run.pid, inst->run.start_time, inst->proc.pidfd(), fds);
        k) {
      again++;
    } else {
      log::error("Keep container run again",
                 {{"container", inst->name}, {"pod", inst->pod_uid}, {"err", k.error().message()}});
    }
  }
  if (again > 0) {
    log::info("The holder keeps this agent's runs again", {{"runs", std::to_string(again)}});
  }
}

}  // namespace kernelet::agent::runtime
