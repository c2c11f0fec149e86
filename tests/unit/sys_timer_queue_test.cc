#include <gtest/gtest.h>

#include <vector>

#include "sys/timer_queue.h"

namespace kernelet {
namespace {

using namespace std::chrono;

TEST(TimerQueue, RunsInDeadlineOrderAndSkipsCancelled) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  auto q = TimerQueue::create(*loop);
  ASSERT_TRUE(q);
  std::vector<int> ran;
  (*q)->after(milliseconds(30), [&] { ran.push_back(3); });
  (*q)->after(milliseconds(10), [&] { ran.push_back(1); });
  auto cancelled = (*q)->after(milliseconds(20), [&] { ran.push_back(2); });
  (*q)->cancel(cancelled);
  (*q)->cancel(cancelled);  // twice is fine
  (*q)->cancel(0);
  auto deadline = steady_clock::now() + seconds(5);
  while ((*q)->size() > 0 && steady_clock::now() < deadline) {
    ASSERT_TRUE(loop->runOnce(milliseconds(100)));
  }
  EXPECT_EQ(ran, (std::vector<int>{1, 3}));
}

TEST(TimerQueue, ACallbackMayAddTimers) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  auto q = TimerQueue::create(*loop);
  ASSERT_TRUE(q);
  int count = 0;
  std::function<void()> again = [&] {
    if (++count < 3) {
      (*q)->after(milliseconds(1), again);
    }
  };
  (*q)->after(milliseconds(0), again);
  auto deadline = steady_clock::now() + seconds(5);
  while (count < 3 && steady_clock::now() < deadline) {
    ASSERT_TRUE(loop->runOnce(milliseconds(100)));
  }
  EXPECT_EQ(count, 3);
  EXPECT_EQ((*q)->size(), 0u);
}

}  // namespace
}  // namespace kernelet
