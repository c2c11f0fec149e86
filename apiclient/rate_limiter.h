#pragma once
// Client-side rate limiting like client-go's token bucket: `qps` tokens a
// second, at most `burst` saved up; each request takes one, waiting if none
// is left. qps <= 0 disables it.

#include <chrono>
#include <mutex>

namespace kernelet::apiclient {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(double qps, int burst, Clock::time_point now = Clock::now())
      : qps_(qps), burst_(burst), tokens_(burst), last_(now) {}

  // Takes a token at `now` and says how long the caller must wait for it.
  Clock::duration reserve(Clock::time_point now);
  // reserve() and sleep.
  void acquire();

 private:
  std::mutex mu_;
  double qps_;
  int burst_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace kernelet::apiclient
