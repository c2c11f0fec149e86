#pragma once
// The eviction manager's arithmetic, as the kubelet's pkg/kubelet/eviction
// helpers do it, over measured numbers only (no file is read here): which
// thresholds a set of observations meets, how long each has been met (soft
// thresholds act only after their grace period), when a met one is resolved
// (evictionMinimumReclaim beyond it), and the pressure conditions kept for
// evictionPressureTransitionPeriod after they were last seen.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/config/config.h"

namespace kernelet::agent::eviction {

using Clock = std::chrono::steady_clock;

// What a signal measured: how much is free and of how much.
struct Observation {
  int64_t available = 0, capacity = 0;
};
// By signal name: memory.available, nodefs.available, nodefs.inodesFree,
// imagefs.available, imagefs.inodesFree, pid.available. A signal that could
// not be measured is absent, and its thresholds are never met.
using Observations = std::map<std::string, Observation>;

// The resource a signal starves, the kubelet's names: memory,
// ephemeral-storage, inodes, pids.
std::string resourceOf(const std::string& signal);
// The node condition a signal drives: MemoryPressure, DiskPressure or PIDPressure.
std::string conditionOf(const std::string& signal);

// One threshold of evictionHard or evictionSoft.
struct Rule {
  std::string signal;
  Threshold value;
  bool hard = true;
  int64_t grace_seconds = 0;  // soft: evictionSoftGracePeriod
  std::optional<Threshold> min_reclaim;
  // For messages: the threshold's amount at `capacity` ("100Mi", "1536Mi").
  int64_t amount(int64_t capacity) const { return value.of(capacity); }
};

// The hard rules, then the soft ones, from the configuration.
std::vector<Rule> rulesOf(const AgentConfig& config);

// available < threshold (+ its minimum reclaim when `enforce_min_reclaim`):
// false for a signal not observed or of no capacity.
bool met(const Rule& rule, const Observations& obs, bool enforce_min_reclaim);

// The pressure conditions the node reports.
struct Pressure {
  bool memory = false, disk = false, pid = false;
  bool operator==(const Pressure&) const = default;
};

// The state the kubelet's synchronize() keeps between two observations.
class Tracker {
 public:
  Tracker(std::vector<Rule> rules, std::chrono::seconds transition)
      : rules_(std::move(rules)), transition_(transition) {}

  struct Outcome {
    std::vector<Rule> met;         // met now (or not yet resolved), grace or not
    std::vector<Rule> actionable;  // met for at least their grace period: evict for these
    Pressure pressure;             // after the transition period
  };
  Outcome observe(const Observations& obs, Clock::time_point now);

  const std::vector<Rule>& rules() const { return rules_; }

 private:
  static std::string keyOf(const Rule& r) { return r.signal + (r.hard ? "/hard" : "/soft"); }

  std::vector<Rule> rules_;
  std::chrono::seconds transition_;
  std::vector<Rule> last_actionable_;  // the kubelet's m.thresholdsMet
  std::map<std::string, Clock::time_point> first_observed_;
  std::map<std::string, Clock::time_point> condition_seen_;
};

// The kubelet's eviction admission: under MemoryPressure alone only
// BestEffort pods are refused, under DiskPressure or PIDPressure every pod;
// `exempt` ones (critical and static pods, as the kubelet admits them)
// never. The rejection's message ("The node had condition: [MemoryPressure]. "),
// nullopt to admit. (A toleration of the node's pressure taint does not
// count here: kernelet reads no tolerations.)
std::optional<std::string> admissionRejection(const Pressure& p, bool best_effort, bool exempt);

// The rule to reclaim for among `actionable`: memory first, then the others
// in their order (the kubelet's byEvictionPriority); nullopt if none.
std::optional<Rule> toReclaim(const std::vector<Rule>& actionable);

}  // namespace kernelet::agent::eviction
