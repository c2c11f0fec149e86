// The holder binary (holder/) through HolderKeeper, on the host: what it keeps
// outlives its client, a second holder refuses the socket, bad messages get
// an error, a dead holder is replaced. Exit statuses seen through the proc
// connector: tests/privileged/holder_exit_test.cc.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "holder/protocol.h"
#include "support/holder_util.h"

namespace kernelet::testing {
namespace {

using agent::runtime::HolderKeeper;
using agent::runtime::KeptRun;

// A stand-in container: writes `first` to its stdout pipe, then for each byte
// read from its control pipe: 'w' writes `second` (exit 3 if that fails:
// EPIPE once no one holds the read end), 'x' exits 7.
struct FakeRun {
  int pid = -1;
  UniqueFd pidfd, out_r, control_w;
  static FakeRun start(const std::string& first, const std::string& second) {
    int out[2], control[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(control, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(out[0]);  // a container holds only its write end
      ::close(control[1]);
      (void)::signal(SIGPIPE, SIG_IGN);  // a valid signal: cannot fail
      if (::write(out[1], first.data(), first.size()) < 0) {
        ::_exit(2);
      }
      for (char c; ::read(control[0], &c, 1) == 1;) {
        if (c == 'w' && ::write(out[1], second.data(), second.size()) < 0) {
          ::_exit(3);
        }
        if (c == 'x') {
          ::_exit(7);
        }
      }
      ::_exit(4);
    }
    ::close(out[1]);
    ::close(control[0]);
    FakeRun r;
    r.pid = pid;
    r.pidfd.reset(sys::pidfdOpen(pid));
    r.out_r.reset(out[0]);
    r.control_w.reset(control[1]);
    return r;
  }
  void tell(char c) { EXPECT_EQ(::write(control_w.get(), &c, 1), 1); }
  int reap() {
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    return status;
  }
};

std::string readSome(int fd) {
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

class HolderTest : public HolderFixture {};

TEST_F(HolderTest, KeptFdsOutliveTheAgentAndTheContainerWritesMeanwhile) {
  FakeRun run = FakeRun::start("before\n", "while away\n");
  const std::string id(64, 'a');
  {
    auto agent = connect();
    ASSERT_TRUE(agent);
    EXPECT_EQ(agent->generation(), 1u);
    int fds[] = {run.out_r.get()};
    auto kept = agent->keep(id, run.pid, procStartTime(run.pid), run.pidfd.get(), fds);
    ASSERT_TRUE(kept) << kept.error().message();
  }                   // the agent is gone: its socket closed
  run.out_r.reset();  // and its own copy of the pipe
  // The container writes while no agent reads: the holder's read end keeps
  // the pipe open, so the write succeeds (no EPIPE) and waits in the pipe.
  run.tell('w');
  auto next = connect();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->generation(), 1u) << "the same holder answers";
  auto ids = next->list();
  ASSERT_TRUE(ids) << ids.error().message();
  EXPECT_EQ(*ids, std::vector<std::string>{id});
  auto fetched = next->fetch(id);
  ASSERT_TRUE(fetched) << fetched.error().message();
  ASSERT_TRUE(fetched->has_value());
  KeptRun& kept = **fetched;
  ASSERT_EQ(kept.fds.size(), 1u);
  EXPECT_FALSE(kept.exit);
  EXPECT_FALSE(kept.exit_lost);
  std::string got;
  while (got.size() < std::string("before\nwhile away\n").size()) {
    std::string some = readSome(kept.fds[0].get());
    ASSERT_FALSE(some.empty());
    got += some;
  }
  EXPECT_EQ(got, "before\nwhile away\n");
  // The pidfd names the container.
  EXPECT_EQ(sys::pidfdSendSignal(kept.pidfd.get(), 0), 0);
  run.tell('x');
  EXPECT_EQ(WEXITSTATUS(run.reap()), 7) << "the container's write did not fail";
  next->forget(id);
  ids = next->list();
  ASSERT_TRUE(ids);
  EXPECT_TRUE(ids->empty());
}

TEST_F(HolderTest, TheHolderRunsDetachedFromTheAgent) {
  auto agent = connect();
  ASSERT_TRUE(agent);
  int holder = agent->holderPid();
  ASSERT_GT(holder, 0);
  EXPECT_NE(::getsid(holder), ::getsid(0)) << "its own session";
  EXPECT_NE(::getpgid(holder), ::getpgrp()) << "a signal to our group misses it";
  std::ifstream stat("/proc/" + std::to_string(holder) + "/stat");
  std::string s((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(s.substr(s.rfind(')') + 2));
  std::string state;
  int ppid = 0;
  fields >> state >> ppid;
  EXPECT_NE(ppid, ::getpid()) << "not our child: we never reap it";
}

TEST_F(HolderTest, ASecondHolderOnTheSameSocketRefusesToStart) {
  auto agent = connect();
  ASSERT_TRUE(agent);
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);
    ::execl(KERNELET_HOLDER_BINARY, "kernelet-holder", socket().c_str(), nullptr);
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  // The first one still serves.
  EXPECT_TRUE(agent->list());
}

// One raw datagram to the holder and its reply's type and errnum.
std::pair<int, int> rawCall(const std::string& path, const void* data, size_t len,
                            int fd_to_pass = -1) {
  UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un sa{.sun_family = AF_UNIX};
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return {-1, errno};
  }
  iovec iov{.iov_base = const_cast<void*>(data), .iov_len = len};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
  msghdr mh{.msg_iov = &iov, .msg_iovlen = 1};
  if (fd_to_pass >= 0) {
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd_to_pass, sizeof(int));
  }
  if (::sendmsg(s.get(), &mh, MSG_NOSIGNAL) < 0) {
    return {-1, errno};
  }
  uint8_t buf[KH_MAX_MSG];
  ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
  kh_msg m;
  if (n <= 0 || kh_parse(buf, static_cast<size_t>(n), &m) != 0) {
    return {-1, 0};
  }
  return {m.type, m.errnum};
}

TEST_F(HolderTest, MalformedMessagesGetAnErrorAndTheHolderStaysUp) {
  auto agent = connect();
  ASSERT_TRUE(agent);
  EXPECT_EQ(rawCall(socket(), "xx", 2), std::make_pair(int{KH_ERROR}, EBADMSG));
  std::string huge(KH_MAX_MSG + 100, 'z');
  EXPECT_EQ(rawCall(socket(), huge.data(), huge.size()), std::make_pair(int{KH_ERROR}, EBADMSG));
  // A client that speaks only versions this holder does not.
  kh_msg hello{};
  hello.type = KH_HELLO;
  hello.min_version = KH_VERSION + 1;
  hello.max_version = KH_VERSION + 2;
  uint8_t hello_buf[KH_MAX_MSG];
  size_t hello_len = kh_encode(&hello, hello_buf, sizeof hello_buf);
  EXPECT_EQ(rawCall(socket(), hello_buf, hello_len),
            std::make_pair(int{KH_ERROR}, EPROTONOSUPPORT));
  uint8_t unknown[KH_HEADER] = {9, 0, 1, 0};
  EXPECT_EQ(rawCall(socket(), unknown, sizeof unknown), std::make_pair(int{KH_ERROR}, EPROTO));
  // A KEEP whose fd is no pidfd.
  kh_msg keep{};
  keep.type = KH_KEEP;
  keep.pid = ::getpid();
  keep.id_len = 3;
  std::memcpy(keep.id, "bad", 3);
  uint8_t buf[KH_MAX_MSG];
  size_t len = kh_encode(&keep, buf, sizeof buf);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  EXPECT_EQ(rawCall(socket(), buf, len, p[0]), std::make_pair(int{KH_ERROR}, EBADMSG));
  ::close(p[0]);
  // The holder dropped the fd it was given: the pipe has no reader left.
  (void)::signal(SIGPIPE, SIG_IGN);  // a valid signal: cannot fail
  EXPECT_EQ(::write(p[1], "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  ::close(p[1]);
  // And it still serves, the same process.
  auto again = connect();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->holderPid(), agent->holderPid());
  EXPECT_TRUE(again->list());
}

TEST_F(HolderTest, ARunWhosePidWasReusedIsRefused) {
  FakeRun run = FakeRun::start("", "");
  auto agent = connect();
  ASSERT_TRUE(agent);
  auto kept = agent->keep("reused", run.pid, procStartTime(run.pid) + 1, run.pidfd.get(), {});
  ASSERT_FALSE(kept);
  EXPECT_EQ(kept.error().errnum, ESRCH) << kept.error().message();
  run.tell('x');
  run.reap();
}

TEST_F(HolderTest, AHolderThatDiedIsReplacedAndTheGenerationSaysSo) {
  FakeRun run = FakeRun::start("", "");
  auto agent = connect();
  ASSERT_TRUE(agent);
  ASSERT_TRUE(agent->keep("run-1", run.pid, procStartTime(run.pid), run.pidfd.get(), {}));
  int first = agent->holderPid();
  killHolder(first);
  auto ids = agent->list();  // reconnects, starting a new holder
  ASSERT_TRUE(ids) << ids.error().message();
  track(agent->holderPid());
  EXPECT_NE(agent->holderPid(), first);
  EXPECT_EQ(agent->generation(), 2u) << "the runtime must keep its runs again";
  EXPECT_TRUE(ids->empty());
  run.tell('x');
  run.reap();
}

TEST_F(HolderTest, ARunThatEndedBeforeItWasKeptReadsExitLost) {
  FakeRun run = FakeRun::start("", "");
  run.tell('x');
  ASSERT_TRUE(awaitExit(run.pidfd.get()));  // a zombie: ended, not reaped
  auto agent = connect();
  ASSERT_TRUE(agent);
  ASSERT_TRUE(agent->keep("gone", run.pid, procStartTime(run.pid), run.pidfd.get(), {}));
  auto fetched = agent->fetch("gone");
  ASSERT_TRUE(fetched && fetched->has_value());
  EXPECT_TRUE((*fetched)->exit_lost);
  EXPECT_FALSE((*fetched)->exit);
  run.reap();
}

TEST_F(HolderTest, NothingAnswersWithoutAHolderBinary) {
  auto k = HolderKeeper::connect(socket(), dir_.path() + "/no-such-holder");
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message().find("no-such-holder"), std::string::npos) << k.error().message();
}

}  // namespace
}  // namespace kernelet::testing

namespace kernelet::testing {
namespace {

// A run that ended and that no one fetched is dropped after the holder's TTL
// (a day; one second here), so the holder cannot grow without bound.
TEST_F(HolderTest, AnEndedRunNoOneFetchesIsDroppedAfterItsTime) {
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t holder = ::fork();
  if (holder == 0) {
    ::dup2(ready[1], 3);  // dup2 clears close-on-exec
    ::execl(KERNELET_HOLDER_BINARY, "kernelet-holder", "--ready-fd", "3", "--ended-ttl", "1",
            socket().c_str(), nullptr);
    ::_exit(127);
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the holder did not start";
  ::close(ready[0]);
  holders_.push_back(holder);
  auto agent = connect();
  ASSERT_TRUE(agent);
  ASSERT_EQ(agent->holderPid(), holder);
  FakeRun ended = FakeRun::start("", "");
  FakeRun running = FakeRun::start("", "");
  ended.tell('x');
  ASSERT_TRUE(awaitExit(ended.pidfd.get()));
  ASSERT_TRUE(agent->keep("ended", ended.pid, 0, ended.pidfd.get(), {}));
  ASSERT_TRUE(
      agent->keep("running", running.pid, procStartTime(running.pid), running.pidfd.get(), {}));
  ::usleep(1500 * 1000);  // the TTL itself is what is tested: time must pass
  auto ids = agent->list();
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, std::vector<std::string>{"running"});
  running.tell('x');
  running.reap();
  ended.reap();
  ::kill(holder, SIGKILL);  // our child here: reap it
  int status = 0;
  ::waitpid(holder, &status, 0);
  holders_.pop_back();
}

}  // namespace
}  // namespace kernelet::testing
