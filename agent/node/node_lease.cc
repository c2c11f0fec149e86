#include "agent/node/node_lease.h"

#include "agent/log.h"
#include "apiclient/objects.h"

namespace kernelet::agent {
namespace {

constexpr int64_t kLeaseDurationSeconds = 40;  // the kubelet's nodeLeaseDurationSeconds

std::string nowMicro() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return apiclient::formatMicroTime(t);
}

}  // namespace

void NodeLease::renew(const std::string& node_uid) {
  std::string path =
      apiclient::resourcePath("coordination.k8s.io/v1", "leases", "kube-node-lease", node_);
  std::string lease = last_;
  // Steady state: PUT the object the last write returned, with a new renewTime.
  for (int attempt = 0; attempt < 5; attempt++) {
    if (lease.empty()) {
      auto got = client_.get(path);
      if (!got && got.error().code == 404) {
        auto made = client_.create(
            apiclient::resourcePath("coordination.k8s.io/v1", "leases", "kube-node-lease"),
            apiclient::encodeNodeLease(node_, node_uid, kLeaseDurationSeconds, nowMicro()));
        if (made) {
          last_ = *made;
          return;
        }
        if (made.error().reason != "AlreadyExists") {
          log::error("Failed to create lease", {{"err", made.error().str()}});
          return;
        }
        continue;
      }
      if (!got) {
        log::error("Failed to get lease", {{"err", got.error().str()}});
        return;
      }
      lease = *got;
    }
    auto renewed = apiclient::withString(lease, {"spec", "renewTime"}, nowMicro());
    if (!renewed) {
      lease.clear();
      continue;
    }
    auto put = client_.update(path, *renewed);
    if (put) {
      last_ = *put;
      return;
    }
    // Conflict or anything else: read it again and retry.
    lease.clear();
    if (put.error().reason != "Conflict") {
      log::error("Failed to update lease", {{"err", put.error().str()}});
      last_.clear();
      return;
    }
  }
}

}  // namespace kernelet::agent
