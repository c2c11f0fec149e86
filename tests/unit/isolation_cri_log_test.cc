#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>

#include "isolation/container_exit.h"
#include "isolation/cri_log.h"
#include "sys/event_loop.h"

namespace kernelet::isolation {
namespace {

struct Line {
  std::string stream, tag, content;
};

// Writes through a pipe and parses what the kubelet would read back.
class CriLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::pipe(p_), 0);
    writer_.emplace(UniqueFd(p_[1]));
  }
  void TearDown() override { ::close(p_[0]); }
  std::vector<Line> lines() {
    writer_.reset();  // closes the write end
    std::string all;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(p_[0], buf, sizeof buf)) > 0) {
      all.append(buf, static_cast<size_t>(n));
    }
    std::vector<Line> out;
    std::istringstream in(all);
    // Split by hand: std::regex recursion over 16 KiB lines overflows the stack.
    static const std::regex timestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z)");
    for (std::string l; std::getline(in, l);) {
      size_t a = l.find(' '), b = l.find(' ', a + 1), c = l.find(' ', b + 1);
      bool ok = a != std::string::npos && b != std::string::npos && c != std::string::npos &&
                std::regex_match(l.substr(0, a), timestamp);
      EXPECT_TRUE(ok) << "not a CRI log line: " << l.substr(0, 80);
      if (!ok) {
        continue;
      }
      Line line{l.substr(a + 1, b - a - 1), l.substr(b + 1, c - b - 1), l.substr(c + 1)};
      EXPECT_TRUE(line.stream == "stdout" || line.stream == "stderr") << line.stream;
      EXPECT_TRUE(line.tag == "P" || line.tag == "F") << line.tag;
      out.push_back(line);
    }
    return out;
  }
  int p_[2];
  std::optional<CriLogWriter> writer_;
};

TEST_F(CriLogTest, WholeLinesAreFull) {
  ASSERT_TRUE(writer_->feed(Stream::kStdout, "hello\nwor"));
  ASSERT_TRUE(writer_->feed(Stream::kStderr, "oops\r\n"));
  ASSERT_TRUE(writer_->feed(Stream::kStdout, "ld\n\n"));
  auto l = lines();
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(l[0].content, "hello");
  EXPECT_EQ(l[0].tag, "F");
  EXPECT_EQ(l[1].stream, "stderr");
  EXPECT_EQ(l[1].content, "oops");
  EXPECT_EQ(l[2].content, "world");
  EXPECT_EQ(l[3].content, "");
}

TEST_F(CriLogTest, LongLinesAreSplitIntoPartials) {
  std::string big(CriLogWriter::kMaxLine * 2 + 100, 'x');
  ASSERT_TRUE(writer_->feed(Stream::kStdout, big + "\n"));
  auto l = lines();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0].tag, "P");
  EXPECT_EQ(l[0].content.size(), CriLogWriter::kMaxLine);
  EXPECT_EQ(l[1].tag, "P");
  EXPECT_EQ(l[2].tag, "F");
  EXPECT_EQ(l[2].content.size(), 100u);
}

TEST_F(CriLogTest, UnterminatedOutputIsFullAtClose) {
  ASSERT_TRUE(writer_->feed(Stream::kStdout, "no newline"));
  ASSERT_TRUE(writer_->close(Stream::kStdout));
  auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].tag, "F");
  EXPECT_EQ(l[0].content, "no newline");
}

TEST(Rfc3339Nano, TrimsTrailingZerosLikeGo) {
  EXPECT_EQ(rfc3339Nano({1475713029, 669794202}), "2016-10-06T00:17:09.669794202Z");
  EXPECT_EQ(rfc3339Nano({1475713029, 500000000}), "2016-10-06T00:17:09.5Z");
  EXPECT_EQ(rfc3339Nano({1475713029, 0}), "2016-10-06T00:17:09Z");
}

TEST(ContainerExit, ReasonsAsTheKubeletReportsThem) {
  EXPECT_EQ((ContainerExit{{0, 0}, false}).reason(), "Completed");
  EXPECT_EQ((ContainerExit{{1, 0}, false}).reason(), "Error");
  EXPECT_EQ((ContainerExit{{0, 9}, false}).reason(), "Error");
  EXPECT_EQ((ContainerExit{{0, 9}, true}).reason(), "OOMKilled");
  EXPECT_EQ((ContainerExit{{0, 9}, false}).status.shellStatus(), 137);
}

}  // namespace
}  // namespace kernelet::isolation

namespace kernelet::isolation {
namespace {

TEST(CriLogRotation, KeepsAtMostMaxFilesAndNeverSplitsALine) {
  char tmpl[] = "/tmp/kernelet-rot-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto w = CriLogWriter::open(dir + "/0.log");
  ASSERT_TRUE(w) << w.error().message();
  w->rotateAt(1000, 3);
  std::string line(100, 'x');
  for (int i = 0; i < 60; i++) {
    ASSERT_TRUE(w->feed(Stream::kStdout, line + "\n"));
  }
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    files.push_back(e.path().filename().string());
    struct stat st {};
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_LE(st.st_size, 1000) << e.path();
    // Every file holds whole CRI lines only.
    std::ifstream in(e.path());
    for (std::string l; std::getline(in, l);) {
      EXPECT_TRUE(l.ends_with(" stdout F " + line)) << l;
    }
  }
  EXPECT_EQ(files.size(), 3u);
  EXPECT_TRUE(std::find(files.begin(), files.end(), "0.log") != files.end());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kernelet::isolation

namespace kernelet::isolation {
namespace {

// The pump over a real pipe, into a memfd log: what the container wrote
// reaches the log once, in order, even across writers (agents).
class CriLogPumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::pipe2(p_, O_CLOEXEC), 0);
    log_ = ::memfd_create("cri-log-pump", MFD_CLOEXEC);
    ASSERT_GE(log_, 0);
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    loop_.emplace(std::move(*loop));
  }
  void TearDown() override {
    ::close(p_[0]);
    if (p_[1] >= 0) {
      ::close(p_[1]);
    }
    ::close(log_);
  }
  // A writer (an agent) pumping a copy of the pipe's read end.
  std::unique_ptr<CriLogWriter> startPump() {
    auto w = std::make_unique<CriLogWriter>(UniqueFd(::dup(log_)));
    EXPECT_TRUE(w->pump(*loop_, UniqueFd(::dup(p_[0])), UniqueFd()));
    return w;
  }
  void write(std::string_view s) {
    ASSERT_EQ(::write(p_[1], s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  // Runs the loop until nothing is ready.
  void settle() {
    for (;;) {
      auto n = loop_->runOnce(std::chrono::milliseconds(0));
      ASSERT_TRUE(n);
      if (*n == 0) {
        return;
      }
    }
  }
  // The log as "TAG content" lines.
  std::vector<std::string> logged() {
    std::string all(static_cast<size_t>(::lseek(log_, 0, SEEK_END)), '\0');
    EXPECT_EQ(::pread(log_, all.data(), all.size(), 0), static_cast<ssize_t>(all.size()));
    std::vector<std::string> out;
    std::istringstream in(all);
    for (std::string l; std::getline(in, l);) {
      size_t a = l.find(' '), b = l.find(' ', a + 1);
      out.push_back(l.substr(b + 1));
    }
    return out;
  }
  // What is still in the pipe (consumes it).
  std::string unread() {
    ::fcntl(p_[0], F_SETFL, O_NONBLOCK);
    std::string all;
    char buf[4096];
    for (ssize_t n; (n = ::read(p_[0], buf, sizeof buf)) > 0;) {
      all.append(buf, static_cast<size_t>(n));
    }
    return all;
  }
  int p_[2] = {-1, -1};
  int log_ = -1;
  std::optional<EventLoop> loop_;
};

TEST_F(CriLogPumpTest, AnUnfinishedLineStaysInThePipeForTheNextWriter) {
  auto first = startPump();
  write("one\ntwo\nhal");
  settle();
  EXPECT_EQ(logged(), (std::vector<std::string>{"F one", "F two"}));
  // The agent dies mid-line: its writer goes, the pipe (kept by the holder) stays.
  first->detach(*loop_);
  first.reset();
  write("f\nthree\n");
  auto second = startPump();
  settle();
  ::close(p_[1]);
  p_[1] = -1;
  settle();
  EXPECT_EQ(logged(), (std::vector<std::string>{"F one", "F two", "F half", "F three"}));
}

TEST_F(CriLogPumpTest, DetachLeavesEveryUnreadByteInThePipe) {
  auto w = startPump();
  write("whole\npart");
  w->detach(*loop_);
  write("ial\n");
  settle();
  EXPECT_TRUE(logged().empty());
  EXPECT_EQ(unread(), "whole\npartial\n");
}

TEST_F(CriLogPumpTest, PartialAndFullPiecesAsBefore) {
  auto w = startPump();
  std::string big(CriLogWriter::kMaxLine * 2 + 100, 'x');
  write(big + "\r\nend");
  settle();
  auto l = logged();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0], "P " + std::string(CriLogWriter::kMaxLine, 'x'));
  EXPECT_EQ(l[1], "P " + std::string(CriLogWriter::kMaxLine, 'x'));
  EXPECT_EQ(l[2], "F " + std::string(100, 'x'));
  // The container exits: what is left becomes an F line.
  w->finish(*loop_);
  EXPECT_EQ(logged().back(), "F end");
  EXPECT_EQ(unread(), "");
}

TEST_F(CriLogPumpTest, TheLastUnfinishedLineIsFullWhenThePipeCloses) {
  auto w = startPump();
  write("a\nno newline");
  settle();
  ::close(p_[1]);
  p_[1] = -1;
  settle();
  EXPECT_EQ(logged(), (std::vector<std::string>{"F a", "F no newline"}));
  EXPECT_TRUE(loop_->empty());
}

// A write bigger than the pipe into a pipe holding an unfinished line blocks
// without waking an edge-triggered reader: the tail timer must find it.
TEST_F(CriLogPumpTest, ABlockedWriteBehindAnUnfinishedLineIsPumped) {
  ASSERT_GT(::fcntl(p_[1], F_SETPIPE_SZ, 64 * 1024), 0);
  auto w = startPump();
  write("tail");
  settle();
  std::string big;
  for (int i = 0; big.size() < 512 * 1024; i++) {
    big += "line " + std::to_string(i) + "\n";
  }
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    bool ok = ::write(p_[1], big.data(), big.size()) == static_cast<ssize_t>(big.size());
    ::_exit(ok ? 0 : 1);
  }
  // Until the whole write is in the log (bounded).
  auto lines = static_cast<size_t>(std::count(big.begin(), big.end(), '\n'));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (logged().size() < lines && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(loop_->runOnce(std::chrono::milliseconds(100)));
  }
  if (logged().size() < lines) {
    ::kill(child, SIGKILL);  // stuck behind the unfinished line: fail, do not hang
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(status, 0);
  settle();
  auto l = logged();
  ASSERT_FALSE(l.empty());
  EXPECT_EQ(l.front(), "F tailline 0");
  EXPECT_EQ(l.size(), lines);
}

// tee(2) copies pipe buffers, not bytes. A writer on an O_DIRECT pipe makes
// one buffer per write: 1-byte writes fill a 64 KiB pipe's 16 slots with 16
// bytes, and the writer blocks. The old pump looked at those 16 bytes, found
// no newline, left them in the pipe and waited for more: forever.
TEST_F(CriLogPumpTest, TinyBuffersFillingThePipeNeverBlockTheWriter) {
  ::close(p_[0]);
  ::close(p_[1]);
  ASSERT_EQ(::pipe2(p_, O_CLOEXEC | O_DIRECT), 0);
  auto w = startPump();
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (int i = 0; i < 300; i++) {
      if (::write(p_[1], "a", 1) != 1) {
        ::_exit(1);
      }
    }
    ::_exit(::write(p_[1], "\n", 1) == 1 ? 0 : 1);
  }
  // Until the child wrote it all (bounded): its pidfd reads exited.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  ASSERT_TRUE(pidfd);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  pollfd exited{.fd = pidfd.get(), .events = POLLIN};
  while (::poll(&exited, 1, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(loop_->runOnce(std::chrono::milliseconds(100)));
  }
  if (::poll(&exited, 1, 0) == 0) {
    ::kill(child, SIGKILL);  // blocked on the full pipe: fail, do not hang
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(status, 0) << "the writer was blocked for good";
  settle();
  EXPECT_EQ(logged(), (std::vector<std::string>{"F " + std::string(300, 'a')}));
}

// A line in more buffers than the old scratch pipe had slots (64): the old
// finish() wrote each look as its own F line.
TEST_F(CriLogPumpTest, FinishWritesALineOfManyBuffersOnce) {
  ::close(p_[0]);
  ::close(p_[1]);
  ASSERT_EQ(::pipe2(p_, O_CLOEXEC | O_DIRECT), 0);
  ASSERT_GE(::fcntl(p_[1], F_SETPIPE_SZ, 1 << 20), 1 << 20);
  auto w = startPump();
  for (int i = 0; i < 100; i++) {
    write("b");
  }
  settle();
  EXPECT_TRUE(logged().empty());
  w->finish(*loop_);
  EXPECT_EQ(logged(), (std::vector<std::string>{"F " + std::string(100, 'b')}));
  EXPECT_EQ(unread(), "");
}

// An attach session's tap: each byte once, as it comes, even a line that
// waits in the pipe for its newline (a prompt shows at once).
TEST_F(CriLogPumpTest, TheTapSeesEachByteOnceAsItComes) {
  auto w = startPump();
  std::string tapped;
  w->setTap([&](Stream s, std::string_view d) {
    EXPECT_EQ(s, Stream::kStdout);
    tapped.append(d);
  });
  write("one\nhal");
  settle();
  EXPECT_EQ(tapped, "one\nhal");
  write("f\nprompt$ ");
  settle();
  EXPECT_EQ(tapped, "one\nhalf\nprompt$ ");
  EXPECT_EQ(logged(), (std::vector<std::string>{"F one", "F half"}));
  w->finish(*loop_);
  EXPECT_EQ(tapped, "one\nhalf\nprompt$ ");
  EXPECT_EQ(logged().back(), "F prompt$ ");
}

// A container's terminal: everything read from the master is stdout, shown
// to the tap at once; EIO (no one has the slave open) is a hangup, the run's end ends it.
TEST(CriLogTerminal, TheMastersOutputIsStdoutUntilTheSlaveIsGone) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0);
  int log = ::memfd_create("cri-log-tty", MFD_CLOEXEC);
  ASSERT_GE(log, 0);
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  CriLogWriter w{UniqueFd(::dup(log))};
  std::string tapped;
  w.setTap([&](Stream s, std::string_view d) {
    EXPECT_EQ(s, Stream::kStdout);
    tapped.append(d);
  });
  ASSERT_TRUE(w.pumpTerminal(*loop, UniqueFd(master)));
  ASSERT_EQ(::write(slave, "hello\n/ # ", 10), 10);
  auto turn = [&] {
    for (int i = 0; i < 100 && !loop->empty(); i++) {
      ASSERT_TRUE(loop->runOnce(std::chrono::milliseconds(10)));
    }
  };
  for (int i = 0; i < 100 && tapped.size() < 11; i++) {
    ASSERT_TRUE(loop->runOnce(std::chrono::milliseconds(10)));
  }
  EXPECT_EQ(tapped, "hello\r\n/ # ") << "the terminal's own newlines";
  ::close(slave);
  turn();
  EXPECT_FALSE(loop->empty()) << "EIO is a hangup: the container may open its terminal again";
  w.finish(*loop);
  EXPECT_TRUE(loop->empty()) << "the run's end ended the pump";
  std::string all(static_cast<size_t>(::lseek(log, 0, SEEK_END)), '\0');
  ASSERT_EQ(::pread(log, all.data(), all.size(), 0), static_cast<ssize_t>(all.size()));
  ::close(log);
  EXPECT_NE(all.find(" stdout F hello\n"), std::string::npos) << all;
  EXPECT_NE(all.find(" stdout F / # \n"), std::string::npos) << all;
  EXPECT_EQ(all.find("stderr"), std::string::npos);
}

// Review proof: a writer that outlives the container's main process (a
// process it left behind in a PID namespace it shares: shareProcessNamespace,
// or an ephemeral container's targetContainerName) and floods its stdout
// keeps finish() - on the agent's loop - busy for as long as it writes.
// Writers stop by themselves after kFloodSeconds (bounded test).
constexpr int kFloodSeconds = 6;

pid_t floodInto(int fd) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    ::alarm(kFloodSeconds);  // bounded: SIGALRM ends it
    char buf[8192];
    for (size_t i = 0; i < sizeof buf; i += 2) {
      buf[i] = 'y';
      buf[i + 1] = '\n';
    }
    for (;;) {
      if (::write(fd, buf, sizeof buf) < 0) {
        ::_exit(0);
      }
    }
  }
  return pid;
}

double secondsOfFinish(CriLogWriter& w, EventLoop& loop) {
  auto t0 = std::chrono::steady_clock::now();
  w.finish(loop);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(CriLogReview, FinishReturnsWhileALeftBehindWriterFloodsThePipe) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  (void)::fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  pid_t writer = floodInto(p[1]);
  ASSERT_GT(writer, 0);
  ::close(p[1]);
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  CriLogWriter w{UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC))};
  ASSERT_TRUE(w.pump(*loop, UniqueFd(p[0]), UniqueFd()));
  ::usleep(200 * 1000);  // the pipe fills; the main process "exits" now
  double took = secondsOfFinish(w, *loop);
  ::kill(writer, SIGKILL);
  ::waitpid(writer, nullptr, 0);
  EXPECT_LT(took, 1.0) << "finish() on the agent's loop took " << took
                       << " s: as long as the left-behind writer wrote";
}

TEST(CriLogReview, FinishReturnsWhileALeftBehindWriterFloodsTheTerminal) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0);
  pid_t writer = floodInto(slave);
  ASSERT_GT(writer, 0);
  ::close(slave);
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  CriLogWriter w{UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC))};
  ASSERT_TRUE(w.pumpTerminal(*loop, UniqueFd(master)));
  ::usleep(200 * 1000);
  double took = secondsOfFinish(w, *loop);
  ::kill(writer, SIGKILL);
  ::waitpid(writer, nullptr, 0);
  EXPECT_LT(took, 1.0) << "finish() on the agent's loop took " << took
                       << " s: as long as the left-behind writer wrote";
}

// Review proof: a container that closes its terminal (every fd on the slave)
// and opens it again (/dev/pts/N, as a daemonizing shell or `exec >/dev/tty`
// does) writes into a terminal nobody reads any more: the pump ended at the
// first EIO, while the agent (and the keeper) still hold the master.
// containerd's console treats EIO as a hangup to wait out.
TEST(CriLogReview, TheTerminalIsStillPumpedAfterTheContainerReopensIt) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  std::string pts = ::ptsname(master);
  int slave = ::open(pts.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0);
  int held = ::dup(master);  // the agent's and the keeper's copies
  int log = ::memfd_create("cri-log-tty", MFD_CLOEXEC);
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  CriLogWriter w{UniqueFd(::dup(log))};
  ASSERT_TRUE(w.pumpTerminal(*loop, UniqueFd(master)));
  auto turn = [&] {
    for (int i = 0; i < 20 && !loop->empty(); i++) {
      ASSERT_TRUE(loop->runOnce(std::chrono::milliseconds(10)));
    }
  };
  ASSERT_EQ(::write(slave, "before\n", 7), 7);
  turn();
  ::close(slave);
  turn();
  slave = ::open(pts.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0) << "the terminal can be opened again: its master is held";
  ASSERT_EQ(::write(slave, "after\n", 6), 6);
  turn();
  std::string all(static_cast<size_t>(::lseek(log, 0, SEEK_END)), '\0');
  ASSERT_EQ(::pread(log, all.data(), all.size(), 0), static_cast<ssize_t>(all.size()));
  EXPECT_NE(all.find(" stdout F before\n"), std::string::npos) << all;
  EXPECT_NE(all.find(" stdout F after\n"), std::string::npos)
      << "output after the reopen is lost (and a container writing more blocks): " << all;
  ::close(slave);
  ::close(held);
  ::close(log);
}

}  // namespace
}  // namespace kernelet::isolation
