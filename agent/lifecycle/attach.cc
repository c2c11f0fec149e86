// kubectl attach's sessions in a pod's containers (PodWorker::attach): the
// checks the user sees, then the runtime's attach.
#include <algorithm>

#include "agent/lifecycle/pod_worker.h"

namespace kernelet::agent {

Result<PodWorker::Attachment> PodWorker::attach(const std::string& name,
                                                const runtime::AttachIo& io, bool tty,
                                                std::function<void()> ended) {
  auto c =
      std::find_if(ctrs_.begin(), ctrs_.end(), [&](const Ctr& k) { return k.spec->name == name; });
  if (c == ctrs_.end()) {
    return makeError("attach", name,
                     "container \"" + name + "\" not found in pod \"" + pod_.name + "\"");
  }
  if (!live(*c)) {
    return makeError("attach", name,
                     "container \"" + name + "\" in pod \"" + pod_.name + "\" is not running");
  }
  // Whether it has a terminal cannot change after its start (the kubelet
  // takes it from the spec): a client asking for one gets kubectl's words.
  if (tty && !c->spec->tty) {
    return makeError("attach", name,
                     "Unable to use a TTY - container " + name + " did not allocate one");
  }
  if (io.stdin && !c->spec->stdin) {
    return makeError("attach", name, "container " + name + " did not start with stdin");
  }
  TRY(runtime::AttachedIo attached, ctx_.runtime->attach(c->handle, io, std::move(ended)));
  return Attachment{.handle = c->handle, .io = std::move(attached)};
}

}  // namespace kernelet::agent
