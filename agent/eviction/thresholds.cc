#include "agent/eviction/thresholds.h"

#include <algorithm>

namespace kernelet::agent::eviction {

std::string resourceOf(const std::string& signal) {
  if (signal == "memory.available") {
    return "memory";
  }
  if (signal == "nodefs.available" || signal == "imagefs.available") {
    return "ephemeral-storage";
  }
  if (signal == "nodefs.inodesFree" || signal == "imagefs.inodesFree") {
    return "inodes";
  }
  return "pids";
}

std::string conditionOf(const std::string& signal) {
  std::string r = resourceOf(signal);
  return r == "memory" ? "MemoryPressure" : r == "pids" ? "PIDPressure" : "DiskPressure";
}

std::vector<Rule> rulesOf(const AgentConfig& config) {
  std::vector<Rule> out;
  auto reclaim = [&](const std::string& signal) -> std::optional<Threshold> {
    auto it = config.eviction_minimum_reclaim.find(signal);
    return it == config.eviction_minimum_reclaim.end() ? std::nullopt : std::optional(it->second);
  };
  for (const auto& [signal, value] : config.eviction_hard) {
    out.push_back({signal, value, true, 0, reclaim(signal)});
  }
  for (const auto& [signal, value] : config.eviction_soft) {
    auto grace = config.eviction_soft_grace_seconds.find(signal);
    out.push_back({signal, value, false,
                   grace == config.eviction_soft_grace_seconds.end() ? 0 : grace->second,
                   reclaim(signal)});
  }
  return out;
}

bool met(const Rule& rule, const Observations& obs, bool enforce_min_reclaim) {
  auto it = obs.find(rule.signal);
  if (it == obs.end() || it->second.capacity <= 0) {
    return false;
  }
  int64_t threshold = rule.amount(it->second.capacity);
  if (enforce_min_reclaim && rule.min_reclaim) {
    threshold += rule.min_reclaim->of(it->second.capacity);
  }
  return it->second.available < threshold;
}

Tracker::Outcome Tracker::observe(const Observations& obs, Clock::time_point now) {
  Outcome out;
  for (const Rule& r : rules_) {
    if (met(r, obs, false)) {
      out.met.push_back(r);
    }
  }
  // A threshold acted on stays met until its minimum reclaim is free too.
  for (const Rule& r : last_actionable_) {
    bool listed = std::any_of(out.met.begin(), out.met.end(),
                              [&](const Rule& m) { return keyOf(m) == keyOf(r); });
    if (!listed && met(r, obs, true)) {
      out.met.push_back(r);
    }
  }
  std::map<std::string, Clock::time_point> first;
  for (const Rule& r : out.met) {
    auto was = first_observed_.find(keyOf(r));
    first[keyOf(r)] = was == first_observed_.end() ? now : was->second;
    condition_seen_[conditionOf(r.signal)] = now;
  }
  first_observed_ = std::move(first);
  // A condition holds while it was seen within the transition period (and
  // always when seen now, even with a period of 0).
  auto holds = [&](const char* type) {
    auto it = condition_seen_.find(type);
    return it != condition_seen_.end() && (it->second == now || now - it->second < transition_);
  };
  out.pressure = {holds("MemoryPressure"), holds("DiskPressure"), holds("PIDPressure")};
  for (const Rule& r : out.met) {
    if (now - first_observed_[keyOf(r)] >= std::chrono::seconds(r.grace_seconds)) {
      out.actionable.push_back(r);
    }
  }
  last_actionable_ = out.actionable;
  return out;
}

std::optional<std::string> admissionRejection(const Pressure& p, bool best_effort, bool exempt) {
  if ((!p.memory && !p.disk && !p.pid) || exempt) {
    return std::nullopt;
  }
  if (p.memory && !p.disk && !p.pid && !best_effort) {
    return std::nullopt;
  }
  std::string list;
  for (auto [type, on] : {std::pair{"MemoryPressure", p.memory}, std::pair{"DiskPressure", p.disk},
                          std::pair{"PIDPressure", p.pid}}) {
    if (on) {
      list += (list.empty() ? "" : " ") + std::string(type);
    }
  }
  return "The node had condition: [" + list + "]. ";
}

std::optional<Rule> toReclaim(const std::vector<Rule>& actionable) {
  for (const Rule& r : actionable) {
    if (r.signal == "memory.available") {
      return r;
    }
  }
  if (actionable.empty()) {
    return std::nullopt;
  }
  return actionable.front();
}

}  // namespace kernelet::agent::eviction
