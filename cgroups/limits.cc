#include <algorithm>
#include <cmath>
#include <limits>

#include "cgroups/cgroups.h"

namespace kernelet::cgroups {

namespace {
constexpr uint64_t kMinShares = 2;
constexpr uint64_t kMaxShares = 262144;
constexpr int64_t kMinQuotaUs = 1000;

std::string maxOr(int64_t v) { return v < 0 ? "max" : std::to_string(v); }
}  // namespace

uint64_t milliCpuToShares(int64_t milli_cpu) {
  if (milli_cpu <= 0) {
    return kMinShares;
  }
  uint64_t shares = static_cast<uint64_t>(milli_cpu) * 1024 / 1000;
  return std::clamp(shares, kMinShares, kMaxShares);
}

uint64_t sharesToWeight(uint64_t shares) {
  // A parabola in log space through (2, 1), (1024, 100) and (262144, 10000):
  // weight = ceil(10^((l^2 + 125 l) / 612 - 7/34)), l = log2(shares).
  shares = std::clamp(shares, kMinShares, kMaxShares);
  double l = std::log2(static_cast<double>(shares));
  double exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0;
  // The small epsilon keeps exact points (1024 -> 100) from rounding up to 101.
  auto weight = static_cast<uint64_t>(std::ceil(std::pow(10.0, exponent) - 1e-9));
  return std::clamp<uint64_t>(weight, 1, 10000);
}

int64_t milliCpuToQuota(int64_t milli_cpu, int64_t period_us) {
  if (milli_cpu <= 0) {
    return -1;
  }
  // A limit so large its quota would not fit an int64 limits nothing: no quota.
  if (period_us > 0 && milli_cpu > std::numeric_limits<int64_t>::max() / period_us) {
    return -1;
  }
  int64_t quota = milli_cpu * period_us / 1000;
  return std::max(quota, kMinQuotaUs);
}

Result<void> Cgroup::apply(const Limits& l) {
  if (l.cpu_weight) {
    TRY_VOID(write("cpu.weight", std::to_string(*l.cpu_weight)));
  }
  if (l.cpu_max) {
    TRY_VOID(
        write("cpu.max", maxOr(l.cpu_max->quota_us) + " " + std::to_string(l.cpu_max->period_us)));
  }
  // memory.min/high before max: lowering max below current usage reclaims, and
  // the kernel checks min <= max only loosely, so the order is the natural one.
  if (l.memory_min) {
    TRY_VOID(write("memory.min", maxOr(*l.memory_min)));
  }
  if (l.memory_low) {
    TRY_VOID(write("memory.low", maxOr(*l.memory_low)));
  }
  if (l.memory_high) {
    TRY_VOID(write("memory.high", maxOr(*l.memory_high)));
  }
  if (l.memory_max) {
    TRY_VOID(write("memory.max", maxOr(*l.memory_max)));
  }
  if (l.memory_swap_max) {
    TRY_VOID(write("memory.swap.max", maxOr(*l.memory_swap_max)));
  }
  if (l.memory_oom_group) {
    TRY_VOID(write("memory.oom.group", *l.memory_oom_group ? "1" : "0"));
  }
  if (l.pids_max) {
    TRY_VOID(write("pids.max", maxOr(*l.pids_max)));
  }
  return {};
}

}  // namespace kernelet::cgroups
