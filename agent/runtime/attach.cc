// KernelRuntime's attach sessions (kubectl attach, run -it): joining the
// stdio a run started with (container_stdio.h), and stdinOnce's close.
#include "agent/log/log.h"
#include "agent/runtime/instance.h"
#include "agent/runtime/kernel_runtime.h"

namespace kernelet::agent::runtime {

Result<AttachedIo> KernelRuntime::attach(ContainerHandle h, const AttachIo& io,
                                         std::function<void()> ended) {
  Instance* inst = find(h);
  if (inst == nullptr) {
    return makeError("attach", std::to_string(h), "the container is not running");
  }
  return inst->stdio.attach(inst->name, io, std::move(ended));
}

void KernelRuntime::detach(ContainerHandle h, uint64_t session) {
  Instance* inst = find(h);
  if (inst != nullptr && inst->stdio.detach(session)) {
    stdinClosedForGood(*inst);
  }
}

void KernelRuntime::attachStdinEnded(ContainerHandle h, uint64_t session) {
  Instance* inst = find(h);
  if (inst != nullptr && inst->stdio.stdinEnded(session)) {
    stdinClosedForGood(*inst);
  }
}

// stdinOnce closed stdin: the record says so (a next agent must not wait
// for a stdin fd), and the keeper lets go of its copy of the write end, or
// the container would never read its end of file.
void KernelRuntime::stdinClosedForGood(Instance& inst) {
  inst.run.stdin_closed = true;
  recordRun(inst);
  if (keeper_ == nullptr) {
    return;
  }
  std::vector<int> fds = inst.keptFds();
  if (fds.empty()) {
    keeper_->forget(inst.id);  // cannot be kept whole any more (a stream closed)
    return;
  }
  if (auto k = keeper_->keep(inst.id, inst.run.pid, inst.run.start_time, inst.proc.pidfd(), fds);
      !k) {
    log::error("Keep container run without stdin",
               {{"container", inst.name}, {"err", k.error().message()}});
  }
}

}  // namespace kernelet::agent::runtime
