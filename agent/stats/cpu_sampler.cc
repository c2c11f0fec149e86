#include "agent/stats/cpu_sampler.h"

namespace kernelet::agent::stats {

CpuSampler::CpuSampler(std::chrono::milliseconds min_window, std::chrono::milliseconds forget_after)
    : min_window_(min_window), forget_after_(forget_after) {}

std::optional<uint64_t> CpuSampler::observe(const std::string& key, uint64_t usage_ns,
                                            Clock::time_point now) {
  std::lock_guard lock(mu_);
  Kept& k = kept_[key];
  k.seen = now;
  Sample current{usage_ns, now};
  if (k.newest && (usage_ns < k.newest->usage_ns || now < k.newest->time)) {
    // A counter that went back is another group (or the clock stepped):
    // start over from this sample.
    k.older.reset();
    k.newest = current;
    return std::nullopt;
  }
  std::optional<Sample> base;
  if (!k.newest || now - k.newest->time >= min_window_) {
    base = k.newest;
    k.older = k.newest;
    k.newest = current;
  } else {
    base = k.older;  // at least min_window before newest, so before now too
  }
  if (!base || usage_ns < base->usage_ns) {
    return std::nullopt;
  }
  auto dt = std::chrono::duration_cast<std::chrono::nanoseconds>(now - base->time).count();
  if (dt <= 0) {
    return std::nullopt;
  }
  // usage in ns per ns of wall time = cores; * 1e9 = nanocores. In long
  // double: a busy 64-core node's delta over 10 s is 6.4e11 ns, times 1e9.
  long double rate = static_cast<long double>(usage_ns - base->usage_ns) * 1e9L / dt;
  return static_cast<uint64_t>(rate);
}

void CpuSampler::prune(Clock::time_point now) {
  std::lock_guard lock(mu_);
  for (auto it = kept_.begin(); it != kept_.end();) {
    if (now - it->second.seen > forget_after_) {
      it = kept_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t CpuSampler::size() const {
  std::lock_guard lock(mu_);
  return kept_.size();
}

}  // namespace kernelet::agent::stats
