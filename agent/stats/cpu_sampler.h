#pragma once
// usageNanoCores: a rate, so it needs two samples of a cumulative counter.
// cadvisor keeps the last samples per container from its housekeeping (every
// ~10 s) and reports the rate between the last two. Here the samples come
// from the stats thread's own sweep every ~10 s (StatsService) and from every
// read: a sample is kept only if it is at least `min_window` after the newest
// kept one, so the rate a read reports is always over at least min_window
// (1 s), never over the few microseconds between two scrapers' reads.
//
// Keys are cgroup paths; keys not sampled for `forget_after` are dropped.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "agent/stats/cgroup_stats.h"

namespace kernelet::agent::stats {

class CpuSampler {
 public:
  explicit CpuSampler(std::chrono::milliseconds min_window = std::chrono::seconds(1),
                      std::chrono::milliseconds forget_after = std::chrono::minutes(5));

  // Records `usage_ns` at `now` for `key` and returns the rate in nanocores
  // since the newest kept sample at least min_window before now; nullopt for
  // the first sample of a key, or a counter that went backwards (a new group
  // under an old name).
  std::optional<uint64_t> observe(const std::string& key, uint64_t usage_ns, Clock::time_point now);
  // Drops keys not observed since `now - forget_after`.
  void prune(Clock::time_point now);
  size_t size() const;

 private:
  struct Sample {
    uint64_t usage_ns = 0;
    Clock::time_point time;
  };
  struct Kept {
    std::optional<Sample> older, newest;
    Clock::time_point seen;
  };
  const std::chrono::milliseconds min_window_, forget_after_;
  mutable std::mutex mu_;
  std::map<std::string, Kept> kept_;  // guarded by mu_
};

}  // namespace kernelet::agent::stats
