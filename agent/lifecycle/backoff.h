#pragma once
// The kubelet's container restart back-off (CrashLoopBackOff): the first
// failure restarts at once, then the waits are 10 s, doubling to at most 300 s;
// a container that ran 10 minutes starts over.

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
  // long to wait before the next start (0: at once).
  std::chrono::seconds next(const std::string& key, Clock::time_point started,
                            Clock::time_point now);
  // A container adopted from a previous agent after `restarts` restarts
  // (restartCount): its next failure waits as it would have under that agent,
  // as if each restart had followed a failure (10 s, 20 s, ...), rather than
  // restarting at once as a fresh back-off does.
  void resume(const std::string& key, int restarts);

  // The kubelet's image pull back-off (flowcontrol.Backoff's Next, keyed by
  // pod and image): a failed pull of `key` at `now` waits 10 s, then each
  // further failure doubles it to at most 300 s. A success does not reset it
  // (the kubelet's GC only drops entries): it starts over once no failure
  // came for twice the maximum. `second` is how long a second lasts (tests).
  std::chrono::seconds pullFailed(const std::string& key, Clock::time_point now,
                                  Clock::duration second = std::chrono::seconds(1));

 private:
  struct Entry {
    std::chrono::seconds delay{0};
  };
  std::chrono::seconds initial_, max_, reset_after_;
  std::map<std::string, Entry> entries_;
  struct PullEntry {
    std::chrono::seconds delay{0};
    Clock::time_point last;
  };
  std::map<std::string, PullEntry> pulls_;
};

}  // namespace kernelet::agent
