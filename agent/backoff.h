#pragma once
// The kubelet's container restart back-off (CrashLoopBackOff): 10 s, doubling
// to at most 300 s, forgotten once a container has run 10 minutes.

#include <chrono>
#include <map>
#include <string>

namespace kernelet::agent {

class Backoff {
 public:
  using Clock = std::chrono::steady_clock;
  Backoff(std::chrono::seconds initial = std::chrono::seconds(10),
          std::chrono::seconds max = std::chrono::seconds(300),
          std::chrono::seconds reset_after = std::chrono::minutes(10))
      : initial_(initial), max_(max), reset_after_(reset_after) {}

  // The container `key` exited at `now` after running since `started`: how
  // long to wait before the next start.
  std::chrono::seconds next(const std::string& key, Clock::time_point started,
                            Clock::time_point now);
  void forget(const std::string& key) { entries_.erase(key); }

 private:
  struct Entry {
    std::chrono::seconds delay{0};
  };
  std::chrono::seconds initial_, max_, reset_after_;
  std::map<std::string, Entry> entries_;
};

}  // namespace kernelet::agent
