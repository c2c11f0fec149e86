#include "agent/backoff.h"

#include <algorithm>

namespace kernelet::agent {

std::chrono::seconds Backoff::next(const std::string& key, Clock::time_point started,
                                   Clock::time_point now) {
  Entry& e = entries_[key];
  // A container that ran long enough starts over from the first delay.
  if (now - started >= reset_after_ || e.delay.count() == 0) {
    e.delay = initial_;
  } else {
    e.delay = std::min(e.delay * 2, max_);
  }
  return e.delay;
}

}  // namespace kernelet::agent
