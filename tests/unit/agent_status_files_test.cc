// StatusFiles: the status changes of one loop turn become one write per pod,
// the file on disk is always a whole one, and only terminal statuses are
// written durably.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/status/status_files.h"
#include "support/temp_dir.h"
#include "sys/event_loop.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

using std::chrono::milliseconds;

struct Write {
  std::string path, json;
  bool durable;
  bool operator==(const Write&) const = default;
};

class StatusFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    loop_.emplace(std::move(*loop));
    auto timers = TimerQueue::create(*loop_);
    ASSERT_TRUE(timers);
    timers_ = std::move(*timers);
  }
  // A StatusFiles that records instead of writing.
  std::unique_ptr<StatusFiles> recording() {
    return std::make_unique<StatusFiles>(
        *timers_, dir_.path(),
        [this](const std::string& path, std::string_view json, bool durable) -> Result<void> {
          writes_.push_back({path, std::string(json), durable});
          return {};
        },
        [this](const std::string& dir) -> Result<void> {
          synced_.push_back(dir);
          return {};
        });
  }
  static StatusFiles::Render render(const std::string& json, bool terminal = false) {
    return [json, terminal] { return StatusFiles::Content{json, terminal}; };
  }
  // The loop's next turn: the batch timer is due at once, so this returns
  // as soon as it ran (or after 50 ms when nothing was pending).
  void turn() { ASSERT_TRUE(loop_->runOnce(milliseconds(50))); }

  kernelet::testing::TempDir dir_;
  std::optional<EventLoop> loop_;
  std::unique_ptr<TimerQueue> timers_;
  std::vector<Write> writes_;
  std::vector<std::string> synced_;
};

TEST_F(StatusFilesTest, ChangesOfOneTurnAreOneWriteWithTheLatestStatus) {
  auto files = recording();
  // A pod's containers start, become ready and it gets an IP, all in one turn.
  for (const char* phase : {"Pending", "Pending+ip", "Running", "Running+ready"}) {
    files->changed("uid-a", render(phase));
  }
  files->changed("uid-b", render("b-Running"));
  EXPECT_TRUE(writes_.empty()) << "written before the turn ended";
  turn();
  EXPECT_EQ(writes_,
            (std::vector<Write>{{dir_.path() + "/uid-a/status.json", "Running+ready", false},
                                {dir_.path() + "/uid-b/status.json", "b-Running", false}}));
  EXPECT_TRUE(synced_.empty()) << "a non-terminal status was flushed to disk";
  // The next turn's change is the next write.
  files->changed("uid-a", render("Running+restarted"));
  turn();
  ASSERT_EQ(writes_.size(), 3u);
  EXPECT_EQ(writes_.back().json, "Running+restarted");
  turn();
  EXPECT_EQ(writes_.size(), 3u);  // nothing more without a change
}

TEST_F(StatusFilesTest, TerminalStatusesAreDurableWithOneDirectoryFlushEach) {
  auto files = recording();
  files->changed("uid-a", render("Running"));
  files->changed("uid-a", render("Succeeded", true));
  files->changed("uid-b", render("Failed", true));
  files->changed("uid-c", render("Running"));
  turn();
  ASSERT_EQ(writes_.size(), 3u);
  EXPECT_TRUE(writes_[0].durable);
  EXPECT_TRUE(writes_[1].durable);
  EXPECT_FALSE(writes_[2].durable);
  // After every rename of the batch: the two pods' directories and the pods dir.
  EXPECT_EQ(synced_, (std::vector<std::string>{dir_.path() + "/uid-a", dir_.path() + "/uid-b",
                                               dir_.path()}));
}

TEST_F(StatusFilesTest, AForgottenPodIsNotWrittenBack) {
  auto files = recording();
  files->changed("uid-a", render("Running"));
  files->changed("uid-gone", [] { return std::optional<StatusFiles::Content>(); });
  files->forget("uid-a");  // removed in the same turn
  turn();
  EXPECT_TRUE(writes_.empty());
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/uid-a"));
  EXPECT_EQ(files->pending(), 0u);
}

TEST_F(StatusFilesTest, TheFileOnDiskIsAlwaysWhole) {
  StatusFiles files(*timers_, dir_.path());
  std::string path = dir_.path() + "/uid-a/status.json";
  // Versions of very different sizes, so that a torn or truncated read shows.
  auto version = [](int i) {
    return "{\"v\":" + std::to_string(i) + ",\"pad\":\"" + std::string((i % 7) * 3000, 'x') + "\"}";
  };
  files.changed("uid-a", render(version(0)));
  turn();
  std::atomic<bool> stop = false;
  std::atomic<int> reads = 0, torn = 0;
  std::thread reader([&] {
    while (!stop) {
      auto text = readFile(path);
      if (!text) {
        torn++;  // the file must exist at every moment
        continue;
      }
      bool whole = text->starts_with("{\"v\":") && text->ends_with("\"}");
      torn += whole ? 0 : 1;
      reads++;
    }
  });
  for (int i = 1; i <= 300; i++) {
    files.changed("uid-a", render(version(i)));
    turn();
  }
  stop = true;
  reader.join();
  EXPECT_EQ(torn, 0);
  EXPECT_GT(reads, 0);
  auto last = readFile(path);
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, version(300));
  // No temporary file is left beside it.
  int entries = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator(dir_.path() + "/uid-a")) {
    entries++;
  }
  EXPECT_EQ(entries, 1);
}

}  // namespace
}  // namespace kernelet::agent
