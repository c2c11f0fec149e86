#include "agent/lifecycle/backoff.h"

#include <algorithm>

namespace kernelet::agent {

std::chrono::seconds Backoff::next(const std::string& key, Clock::time_point started,
                                   Clock::time_point now) {
  auto [it, first] = entries_.try_emplace(key);
  Entry& e = it->second;
  // A first failure, or one after a long enough run, restarts at once and arms
  // the first delay, as the kubelet's doBackOff does (IsInBackOffSince is false
  // without an entry, then Next records one).
  if (first || now - started >= reset_after_) {
    e.delay = initial_;
    return std::chrono::seconds(0);
  }
  std::chrono::seconds wait = e.delay;
  e.delay = std::min(e.delay * 2, max_);
  return wait;
}

std::chrono::seconds Backoff::pullFailed(const std::string& key, Clock::time_point now,
                                         Clock::duration second) {
  auto [it, first] = pulls_.try_emplace(key);
  PullEntry& e = it->second;
  if (first || now - e.last > 2 * max_.count() * second) {
    e.delay = initial_;
  } else {
    e.delay = std::min(e.delay * 2, max_);
  }
  e.last = now;
  return e.delay;
}

void Backoff::resume(const std::string& key, int restarts) {
  if (restarts <= 0) {
    return;  // no failure yet: the first restarts at once
  }
  std::chrono::seconds delay = initial_;
  for (int i = 1; i < restarts && delay < max_; i++) {
    delay *= 2;
  }
  entries_[key].delay = std::min(delay, max_);
}

}  // namespace kernelet::agent
