#pragma once
// A fixture for the prober's unit tests: the event loop and timers a probe
// runs on in the agent, and a run of one probe to its outcome.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>

#include "agent/prober/prober.h"
#include "sys/event_loop.h"
#include "sys/timer_queue.h"

namespace kernelet::testing {

class ProbeLoop : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = EventLoop::create();
    ASSERT_TRUE(l);
    loop_.emplace(std::move(*l));
    auto t = TimerQueue::create(*loop_);
    ASSERT_TRUE(t);
    timers_ = std::move(*t);
  }

  // Runs one probe to its outcome; nullopt if it had none within 10 s.
  std::optional<agent::ProbeOutcome> runProbe(const agent::Probe& p,
                                              const agent::ProbeTarget& target) {
    std::optional<agent::ProbeOutcome> out;
    auto run =
        agent::startProbe(*loop_, *timers_, p, target, [&](agent::ProbeOutcome o) { out = o; });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!out && std::chrono::steady_clock::now() < deadline) {
      (void)loop_->runOnce(std::chrono::milliseconds(100));
    }
    return out;
  }

  std::optional<EventLoop> loop_;
  std::unique_ptr<TimerQueue> timers_;
};

}  // namespace kernelet::testing
