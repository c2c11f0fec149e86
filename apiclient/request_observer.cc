#include "apiclient/request_observer.h"

#include <memory>
#include <mutex>

namespace kernelet::apiclient {

namespace {

// A shared_ptr copied under the mutex and called outside it: an observer may
// take its own locks, and a replacement never waits for a call in progress.
std::mutex mu;
std::shared_ptr<const RequestObserver> current;  // guarded by mu

}  // namespace

void setRequestObserver(RequestObserver observer) {
  auto next = observer ? std::make_shared<const RequestObserver>(std::move(observer)) : nullptr;
  std::lock_guard lock(mu);
  current = std::move(next);
}

void observeRequest(const RequestObservation& observation) {
  std::shared_ptr<const RequestObserver> o;
  {
    std::lock_guard lock(mu);
    o = current;
  }
  if (o) {
    (*o)(observation);
  }
}

}  // namespace kernelet::apiclient
