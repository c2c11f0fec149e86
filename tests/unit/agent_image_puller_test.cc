// ImagePuller with a fake pull: the pool's bound, one pull per reference (and
// credentials) shared by its waiters, cancellation of pulls nobody waits for, and a shutdown that
// joins every worker.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/runtime/image_puller.h"

namespace kernelet::agent {
namespace {

using std::chrono::milliseconds;

int threadCount() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/task");
  while (dirent* e = ::readdir(d)) {
    n += e->d_name[0] != '.';
  }
  ::closedir(d);
  return n;
}

// A registry whose pulls block until the test opens the gate; it records
// which references were pulled and how many ran at once.
class FakeRegistry {
 public:
  Result<images::ImageRecord> pull(const std::string& ref, const ImagePuller::Credentials& creds) {
    std::unique_lock lock(mu_);
    calls_[ref]++;
    std::string who;
    for (const auto& c : creds) {
      who += (who.empty() ? "" : ",") + c.username;
    }
    with_[ref].push_back(who);
    running_++;
    max_running_ = std::max(max_running_, running_);
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
    running_--;
    if (ref.starts_with("bad")) {
      return makeError("pull", ref, "manifest unknown");
    }
    if (ref.starts_with("private") && creds.empty()) {
      return makeError("pull", ref, "access denied");
    }
    return images::ImageRecord{.name = ref};
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  // Waits (bounded) until `n` pulls are running.
  bool waitRunning(int n) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return running_ >= n; });
  }
  int calls(const std::string& ref) {
    std::lock_guard lock(mu_);
    return calls_[ref];
  }
  // Whose credentials each pull of `ref` had ("" for none), in order.
  std::vector<std::string> with(const std::string& ref) {
    std::lock_guard lock(mu_);
    return with_[ref];
  }
  int maxRunning() {
    std::lock_guard lock(mu_);
    return max_running_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool open_ = false;
  int running_ = 0, max_running_ = 0;
  std::map<std::string, int> calls_;
  std::map<std::string, std::vector<std::string>> with_;
};

class ImagePullerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    loop_.emplace(std::move(*loop));
  }
  std::unique_ptr<ImagePuller> makePuller(int workers) {
    auto p = ImagePuller::create(
        *loop_,
        [this](const std::string& ref, const ImagePuller::Credentials& creds) {
          return registry_.pull(ref, creds);
        },
        workers);
    EXPECT_TRUE(p) << p.error().message();
    return p ? std::move(*p) : nullptr;
  }
  // Runs the loop until `until` holds (bounded).
  void runUntil(const std::function<bool()>& until) {
    for (int i = 0; i < 500 && !until(); i++) {
      ASSERT_TRUE(loop_->runOnce(milliseconds(20)));
    }
  }

  // Runs the loop a little: a callback that should not come would come now.
  void settle() {
    for (int i = 0; i < 10; i++) {
      ASSERT_TRUE(loop_->runOnce(milliseconds(20)));
    }
  }

  FakeRegistry registry_;
  std::optional<EventLoop> loop_;
};

TEST_F(ImagePullerTest, NoMoreThanTheWorkersPullAtOnce) {
  auto puller = makePuller(2);
  ASSERT_TRUE(puller);
  std::map<std::string, std::string> got;
  std::vector<ImagePuller::Ticket> tickets;
  for (const char* ref : {"a", "b", "c", "d", "e"}) {
    tickets.push_back(puller->request(ref, [&got, ref](Result<images::ImageRecord> r) {
      got[ref] = r ? r->name : r.error().message();
    }));
  }
  ASSERT_TRUE(registry_.waitRunning(2));
  std::this_thread::sleep_for(milliseconds(100));  // a third worker would start now
  EXPECT_EQ(registry_.maxRunning(), 2);
  EXPECT_EQ(puller->counts().running, 2u);
  EXPECT_EQ(puller->counts().queued, 3u);
  registry_.open();
  runUntil([&] { return got.size() == 5; });
  EXPECT_EQ(got.size(), 5u);
  for (const auto& [ref, name] : got) {
    EXPECT_EQ(name, ref);  // each waiter got its own image
  }
  EXPECT_EQ(registry_.maxRunning(), 2);
}

TEST_F(ImagePullerTest, WaitersForOneReferenceShareOnePull) {
  auto puller = makePuller(3);
  ASSERT_TRUE(puller);
  std::vector<std::string> got;
  auto record = [&got](Result<images::ImageRecord> r) {
    got.push_back(r ? r->name : r.error().message());
  };
  auto t1 = puller->request("busybox", record);
  ASSERT_TRUE(registry_.waitRunning(1));
  // One joins the running pull, the legacy pull() too, and one waits for a
  // pull that fails: they all hear its one result.
  auto t2 = puller->request("busybox", record);
  puller->pull("busybox", {},
               [&record](Result<images::ImageRecord> r, std::chrono::nanoseconds) { record(r); });
  auto t3 = puller->request("bad", record);
  auto t4 = puller->request("bad", record);
  registry_.open();
  runUntil([&] { return got.size() == 5; });
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"busybox", "busybox", "busybox",
                                           "pull `bad`: manifest unknown",
                                           "pull `bad`: manifest unknown"}));
  EXPECT_EQ(registry_.calls("busybox"), 1);
  EXPECT_EQ(registry_.calls("bad"), 1);
  // A request after the pull ended pulls again (the caller decided it must).
  auto t5 = puller->request("busybox", record);
  runUntil([&] { return got.size() == 6; });
  EXPECT_EQ(registry_.calls("busybox"), 2);
}

// Pods with other credentials do not share a pull: the one without fails for
// want of them, the one with them is not failed by it, and no pod's
// credentials go into another's pull.
TEST_F(ImagePullerTest, PullsWithOtherCredentialsAreOtherPulls) {
  auto puller = makePuller(3);
  ASSERT_TRUE(puller);
  std::map<std::string, std::vector<std::string>> got;
  auto record = [&got](const std::string& pod) {
    return [&got, pod](Result<images::ImageRecord> r) {
      got[pod].push_back(r ? "ok" : r.error().message());
    };
  };
  ImagePuller::Credentials alice = {{"alice", "a"}}, bob = {{"bob", "b"}};
  auto anon = puller->request("private/app", record("anon"));
  auto a1 = puller->request("private/app", alice, record("a1"));
  auto a2 = puller->request("private/app", alice, record("a2"));
  auto b = puller->request("private/app", bob, record("b"));
  ASSERT_TRUE(registry_.waitRunning(3));
  registry_.open();
  runUntil([&] { return got.size() == 4; });
  EXPECT_EQ(got["anon"], std::vector<std::string>{"pull `private/app`: access denied"});
  for (const char* pod : {"a1", "a2", "b"}) {
    EXPECT_EQ(got[pod], std::vector<std::string>{"ok"}) << pod;
  }
  auto with = registry_.with("private/app");
  std::sort(with.begin(), with.end());
  EXPECT_EQ(with, (std::vector<std::string>{"", "alice", "bob"})) << "alice's pods share one";
}

TEST_F(ImagePullerTest, APullNobodyWaitsForAnyMoreNeverStarts) {
  auto puller = makePuller(1);
  ASSERT_TRUE(puller);
  std::vector<std::string> got;
  auto record = [&got](Result<images::ImageRecord> r) { got.push_back(r ? r->name : "error"); };
  auto first = puller->request("first", record);
  ASSERT_TRUE(registry_.waitRunning(1));
  auto deleted = puller->request("deleted-pod-image", record);
  auto shared_a = puller->request("shared", record);
  auto shared_b = puller->request("shared", record);
  EXPECT_EQ(puller->counts().queued, 2u);
  deleted.withdraw();                // its pod was deleted: the pull is dropped from the queue
  shared_a = ImagePuller::Ticket();  // one of two waiters gone: still pulled
  EXPECT_EQ(puller->counts().queued, 1u);
  registry_.open();
  runUntil([&] { return got.size() == 2; });
  settle();
  EXPECT_EQ(got, (std::vector<std::string>{"first", "shared"}));
  EXPECT_EQ(registry_.calls("deleted-pod-image"), 0);
  EXPECT_EQ(registry_.calls("shared"), 1);
}

TEST_F(ImagePullerTest, ARunningPullWhoseWaitersLeftEndsWithoutCallingThem) {
  auto puller = makePuller(1);
  ASSERT_TRUE(puller);
  bool called = false;
  auto t = puller->request("img", [&called](Result<images::ImageRecord>) { called = true; });
  ASSERT_TRUE(registry_.waitRunning(1));
  t.withdraw();
  registry_.open();
  runUntil([&] { return puller->counts().running == 0; });
  settle();
  EXPECT_FALSE(called);
  EXPECT_EQ(registry_.calls("img"), 1);
}

TEST_F(ImagePullerTest, ShutdownWaitsForRunningPullsAndJoinsEveryWorker) {
  int before = threadCount();
  auto puller = makePuller(3);
  ASSERT_TRUE(puller);
  EXPECT_EQ(threadCount(), before + 3);
  bool called = false;
  auto done = [&called](Result<images::ImageRecord>) { called = true; };
  puller->pull("running", done);
  ASSERT_TRUE(registry_.waitRunning(1));
  puller->pull("r2", done);
  puller->pull("r3", done);
  ASSERT_TRUE(registry_.waitRunning(3));
  auto queued = puller->request("queued", done);
  std::thread opener([this] {
    std::this_thread::sleep_for(milliseconds(200));
    registry_.open();
  });
  auto begin = std::chrono::steady_clock::now();
  puller.reset();  // blocks until the running pulls end
  EXPECT_GE(std::chrono::steady_clock::now() - begin, milliseconds(150));
  opener.join();
  EXPECT_EQ(threadCount(), before);  // no worker left behind
  EXPECT_EQ(registry_.calls("queued"), 0);
  queued.withdraw();  // after the puller: harmless
  settle();
  EXPECT_FALSE(called);  // results of a puller that is gone go nowhere
}

// The agent reads SIGTERM from a signalfd, with the signal blocked in every
// thread; a worker that could take it would end the agent at once.
TEST_F(ImagePullerTest, WorkersTakeNoSignals) {
  auto puller = makePuller(2);
  ASSERT_TRUE(puller);
  int blocking_sigterm = 0;
  std::string main_tid = std::to_string(::getpid());
  DIR* d = ::opendir("/proc/self/task");
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.' || e->d_name == main_tid) {
      continue;
    }
    std::ifstream status(std::string("/proc/self/task/") + e->d_name + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.starts_with("SigBlk:")) {
        uint64_t mask = std::stoull(line.substr(7), nullptr, 16);
        blocking_sigterm += (mask >> (SIGTERM - 1)) & 1;
      }
    }
  }
  ::closedir(d);
  EXPECT_EQ(blocking_sigterm, 2);
  // And the creating thread's own mask is as it was.
  sigset_t now;
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, nullptr, &now), 0);
  EXPECT_FALSE(sigismember(&now, SIGTERM));
}

TEST_F(ImagePullerTest, APoolNeedsAWorker) {
  auto p = ImagePuller::create(
      *loop_,
      [](const std::string&, const ImagePuller::Credentials&) -> Result<images::ImageRecord> {
        return {};
      },
      0);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message(), "image puller: needs at least one worker, got 0");
}

}  // namespace
}  // namespace kernelet::agent
