#include "apiclient/rate_limiter.h"

#include <algorithm>
#include <thread>

namespace kernelet::apiclient {

RateLimiter::Clock::duration RateLimiter::reserve(Clock::time_point now) {
  if (qps_ <= 0) {
    return Clock::duration::zero();
  }
  std::lock_guard lock(mu_);
  if (now > last_) {
    tokens_ = std::min<double>(burst_,
                               tokens_ + std::chrono::duration<double>(now - last_).count() * qps_);
    last_ = now;
  }
  tokens_ -= 1;  // may go negative: later callers queue behind this one
  if (tokens_ >= 0) {
    return Clock::duration::zero();
  }
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(-tokens_ / qps_));
}

void RateLimiter::acquire() {
  auto wait = reserve(Clock::now());
  if (wait > Clock::duration::zero()) {
    std::this_thread::sleep_for(wait);
  }
}

}  // namespace kernelet::apiclient
