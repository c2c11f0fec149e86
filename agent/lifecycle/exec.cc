// kubectl exec's processes in a pod's containers (PodWorker::exec): started
// as an exec probe's are, kept until they exit, killed when the worker goes.
#include <sys/epoll.h>

#include <algorithm>

#include "agent/lifecycle/pod_worker.h"

namespace kernelet::agent {

namespace {
// As the probes': a child that has not exec'ed in this long is stuck.
constexpr std::chrono::seconds kSetupTimeout{60};
}  // namespace

PodWorker::ExecRun::~ExecRun() {
  if (proc) {
    loop->remove(proc->exitFd());
  }
  proc.reset();  // kills and reaps it if it still runs
  if (exited) {
    exited(makeError("exec", "", "the pod's worker stopped"));
  }
}

Result<void> PodWorker::exec(const std::string& name, const std::vector<std::string>& argv,
                             const runtime::ExecIo& io, std::function<void(Result<int>)> exited) {
  auto c =
      std::find_if(ctrs_.begin(), ctrs_.end(), [&](const Ctr& k) { return k.spec->name == name; });
  if (c == ctrs_.end()) {
    return makeError("exec", name,
                     "container \"" + name + "\" not found in pod \"" + pod_.name + "\"");
  }
  if (!live(*c)) {
    return makeError("exec", name,
                     "container \"" + name + "\" in pod \"" + pod_.name + "\" is not running");
  }
  TRY(std::unique_ptr<runtime::ExecProcess> proc,
      ctx_.runtime->exec(c->handle, argv, io, kSetupTimeout));
  uint64_t id = next_command_++;
  auto run = std::make_unique<ExecRun>();
  run->loop = ctx_.loop;
  run->exited = std::move(exited);
  int fd = proc->exitFd();
  std::weak_ptr<PodWorker> self = weak_from_this();
  TRY_VOID(ctx_.loop->add(fd, EPOLLIN, [self, id](uint32_t) {
    auto w = self.lock();
    if (!w) {
      return;
    }
    auto node = w->execs_.extract(id);
    if (node.empty()) {
      return;
    }
    ExecRun& r = *node.mapped();
    r.loop->remove(r.proc->exitFd());
    Result<int> status = r.proc->reap();
    r.proc.reset();
    auto done = std::move(r.exited);
    r.exited = nullptr;
    done(std::move(status));
  }));
  run->proc = std::move(proc);
  execs_[id] = std::move(run);
  return {};
}

}  // namespace kernelet::agent
