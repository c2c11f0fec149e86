// The remote command (agent/streams/remote_command.h) over a FakeTransport,
// with an ExecStarter that fork/execs on the host: pipes, or a pty whose
// master goes over the console socket as the real starter sends it.

#include "agent/streams/remote_command.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstring>
#include <mutex>
#include <thread>

#include "support/remote_command_fixture.h"

namespace kernelet::agent::streams {
namespace {

using namespace std::chrono_literals;
using testing::FakeTransport;

// Sends `fd` over `sock` as runc sends a console socket's master.
bool sendFd(int sock, int fd) {
  char name[] = "/dev/pts/test";
  iovec iov{.iov_base = name, .iov_len = sizeof(name)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0;
}

// An ExecStarter on the host: fork, the request's fds (or a fresh pty) as
// 0, 1, 2, exec. A waiter thread per process reports its exit.
class HostStarter {
 public:
  ~HostStarter() {
    for (pid_t p : pids_) {
      ::kill(p, SIGKILL);  // a failed test must not leave a process behind
    }
    for (auto& t : waiters_) {
      t.join();
    }
  }

  ExecStarter fn() {
    return [this](ExecRequest r, ExecHooks h) { start(std::move(r), std::move(h)); };
  }

  std::atomic<int> starts{0};
  std::vector<pid_t> pids_;

 private:
  void start(ExecRequest r, ExecHooks h) {
    starts++;
    std::vector<char*> argv;
    argv.reserve(r.command.size() + 1);
    for (auto& a : r.command) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    int status[2];
    ASSERT_EQ(::pipe2(status, O_CLOEXEC), 0);
    UniqueFd master, slave;
    if (r.tty) {
      ASSERT_NO_FATAL_FAILURE(testing::openPty(master, slave));
    }
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      (void)::signal(SIGPIPE, SIG_DFL);  // the test ignores it; exec keeps SIG_IGN
      int fds[3] = {r.stdin_fd.get(), r.stdout_fd.get(), r.stderr_fd.get()};
      if (r.tty) {
        (void)::setsid();  // the child: failures show as the test's failure
        (void)::ioctl(slave.get(), TIOCSCTTY, 0);
        fds[0] = fds[1] = fds[2] = slave.get();
      }
      int null = ::open("/dev/null", O_RDWR);
      for (int i = 0; i < 3; i++) {
        (void)::dup2(fds[i] >= 0 ? fds[i] : null, i);
      }
      ::execvp(argv[0], argv.data());
      int e = errno;
      (void)!::write(status[1], &e, sizeof(e));
      ::_exit(127);
    }
    ::close(status[1]);
    int e = 0;
    ssize_t n = ::read(status[0], &e, sizeof(e));
    ::close(status[0]);
    r.stdin_fd.reset();
    r.stdout_fd.reset();
    r.stderr_fd.reset();
    slave.reset();
    if (n == sizeof(e)) {
      ::waitpid(pid, nullptr, 0);
      h.started(sysError(e, "exec", r.command[0]));
      return;
    }
    if (r.tty) {
      ASSERT_TRUE(sendFd(r.console_socket.get(), master.get()));
    }
    master.reset();
    r.console_socket.reset();
    pids_.push_back(pid);
    h.started({});
    waiters_.emplace_back([pid, exited = std::move(h.exited)] {
      int st = 0;
      ::waitpid(pid, &st, 0);
      exited(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    });
  }

  std::vector<std::thread> waiters_;
};

class RemoteCommandTest : public testing::RemoteCommandFixture {
 protected:
  void run(const std::string& protocol, RemoteCommandOptions o) {
    if (o.command.empty()) {
      o.command = {"true"};
    }
    runRemoteCommand(t_, protocol, std::move(o), starter_.fn(), [this](const ExecOutcome& out) {
      outcome_ = out;
      done_ = true;
    });
  }

  HostStarter starter_;
  ExecOutcome outcome_;
  bool done_ = false;
};

TEST_F(RemoteCommandTest, BothStreamsAndExitCodeWithTheKubeletsV4Status) {
  run("v4.channel.k8s.io", {.command = {"sh", "-c", "echo out; echo err >&2; exit 3"},
                            .use_stdout = true,
                            .use_stderr = true});
  EXPECT_TRUE(t_->started);
  openStreams(false, true, true);
  ASSERT_TRUE(runUntil([&] { return done_; }));
  EXPECT_EQ(t_->written[kStdout], "out\n");
  EXPECT_EQ(t_->written[kStderr], "err\n");
  // Exactly what the kubelet writes (Go escapes > and & in JSON strings).
  EXPECT_EQ(t_->written[kError],
            R"({"metadata":{},"status":"Failure","message":"command terminated with non-zero )"
            R"(exit code: error executing command [sh -c echo out; echo err \u003e\u00262; exit )"
            R"(3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":)"
            R"("ExitCode","message":"3"}]}})");
  EXPECT_TRUE(t_->finished[kStdout]);
  EXPECT_TRUE(t_->finished[kStderr]);
  EXPECT_TRUE(t_->finished[kError]);
  EXPECT_EQ(t_->close_calls, 1);
  EXPECT_EQ(outcome_.kind, ExecOutcome::Kind::kExited);
  EXPECT_EQ(outcome_.exit_code, 3);
}

TEST_F(RemoteCommandTest, SuccessIsAStatusOnV4AndNothingOnV3) {
  run("v4.channel.k8s.io", {.command = {"true"}, .use_stdout = true});
  openStreams(false, true, false);
  ASSERT_TRUE(runUntil([&] { return done_; }));
  EXPECT_EQ(t_->written[kError], R"({"metadata":{},"status":"Success"})");

  auto v3 = std::make_shared<FakeTransport>(ioc_);
  t_ = v3;
  done_ = false;
  run("v3.channel.k8s.io", {.command = {"sh", "-c", "exit 2"}, .use_stdout = true});
  openStreams(false, true, false);
  ASSERT_TRUE(runUntil([&] { return done_; }));
  // v1-v3 carry only the message (client-go prints it as the error).
  EXPECT_EQ(v3->written[kError],
            "command terminated with non-zero exit code: error executing command [sh -c exit 2], "
            "exit code 2");
}

TEST_F(RemoteCommandTest, StdinReachesTheProcessAndItsEndEndsCat) {
  run("v4.channel.k8s.io", {.command = {"cat"}, .use_stdin = true, .use_stdout = true});
  openStreams(true, true, false);
  t_->send(kStdin, "hello\n");
  t_->send(kStdin, "world\n");
  ASSERT_TRUE(runUntil([&] { return t_->written[kStdout] == "hello\nworld\n"; }));
  EXPECT_FALSE(done_) << "cat must still wait for more";
  EXPECT_EQ(t_->consumed_bytes[kStdin], 12u);
  t_->halfClose(kStdin);  // SPDY's FIN
  ASSERT_TRUE(runUntil([&] { return done_; }));
  EXPECT_EQ(outcome_.exit_code, 0);
  EXPECT_EQ(t_->written[kError], R"({"metadata":{},"status":"Success"})");
}

TEST_F(RemoteCommandTest, AResetStdinEndsItToo) {
  t_->hold_writes = true;  // cat blocks on stdout, so stdin chunks wait in our queue
  run("v4.channel.k8s.io", {.command = {"cat"}, .use_stdin = true, .use_stdout = true});
  openStreams(true, true, false);
  std::string chunk(64 << 10, 'x');
  for (int i = 0; i < 16; i++) {
    t_->send(kStdin, chunk);
  }
  ASSERT_TRUE(runUntil([&] { return t_->writes >= 1; }));
  t_->clientReset(kStdin);  // what was queued is dropped, and consumed
  ASSERT_TRUE(runUntil([&] {
    t_->releaseWrites();
    return done_;
  }));
  EXPECT_EQ(outcome_.exit_code, 0);
  EXPECT_EQ(t_->consumed_bytes[kStdin], 16u * chunk.size());
  EXPECT_LT(t_->written[kStdout].size(), 16u * chunk.size());
}

TEST_F(RemoteCommandTest, WebSocketV5AnnouncesReadinessAndItsCloseSignalEndsStdin) {
  run("v5.channel.k8s.io",
      {.command = {"cat"}, .use_stdin = true, .use_stdout = true, .websocket = true});
  // A WebSocket transport reports every channel of the plan at once.
  openStreams(true, true, false);
  ASSERT_TRUE(runUntil([&] { return t_->written.contains(kStdout); }));
  EXPECT_EQ(t_->written[kStdout], "") << "the kubelet's empty first message on stdout";
  t_->halfClose(kStdin);  // the v5 CLOSE signal for channel 0
  ASSERT_TRUE(runUntil([&] { return done_; }));
  EXPECT_EQ(outcome_.exit_code, 0);
  EXPECT_EQ(t_->written[kStdout], "");
}

TEST_F(RemoteCommandTest, AClientThatDoesNotReadBlocksTheProcessNotOurMemory) {
  constexpr size_t kTotal = 4 << 20;
  t_->hold_writes = true;
  run("v4.channel.k8s.io", {.command = {"cat"}, .use_stdin = true, .use_stdout = true});
  openStreams(true, true, false);
  std::string chunk(64 << 10, 'x');
  for (size_t sent = 0; sent < kTotal; sent += chunk.size()) {
    t_->send(kStdin, chunk);
  }
  t_->halfClose(kStdin);
  ASSERT_TRUE(runUntil([&] { return t_->writes >= 1; }));
  // Nothing is awaited here: the point is that nothing more happens.
  ioc_.run_for(300ms);
  EXPECT_EQ(t_->writes, 1) << "one chunk in flight until the client takes it";
  EXPECT_LE(t_->written[kStdout].size(), 64u << 10) << "one chunk: a pipe's capacity";
  // stdin: only what reached the pipe was consumed, so the transport holds
  // the client back (cat is blocked on its stdout, the pipes are full).
  EXPECT_LT(t_->consumed_bytes[kStdin], 1u << 20);
  EXPECT_FALSE(done_);
  ASSERT_TRUE(runUntil([&] {
    t_->releaseWrites();
    return done_;
  }));
  EXPECT_EQ(t_->written[kStdout].size(), kTotal);
  EXPECT_EQ(t_->consumed_bytes[kStdin], kTotal);
  EXPECT_EQ(outcome_.exit_code, 0);
}

TEST_F(RemoteCommandTest, ResizeReachesTheTerminal) {
  run("v4.channel.k8s.io", {.command = {"sh", "-c", "read x; stty size; read y; stty size"},
                            .use_stdin = true,
                            .use_stdout = true,
                            .use_stderr = true,  // dropped with a tty, as the kubelet does
                            .tty = true});
  openStreams(true, true, false, true);
  t_->send(kResize, R"({"Width":100,"Height":37})"
                    "\n");
  t_->send(kStdin, "a\n");
  ASSERT_TRUE(runUntil([&] { return t_->written[kStdout].find("37 100") != std::string::npos; }));
  // Split across data frames, and in Go's case-insensitive key form.
  t_->send(kResize, R"({"width":5)");
  t_->send(kResize, R"(0,"height":20})");
  t_->send(kStdin, "b\n");
  ASSERT_TRUE(runUntil([&] { return done_; }));
  EXPECT_NE(t_->written[kStdout].find("20 50"), std::string::npos) << t_->written[kStdout];
  EXPECT_EQ(outcome_.exit_code, 0);
  EXPECT_FALSE(t_->written.contains(kStderr));
}

TEST_F(RemoteCommandTest, StreamsThatNeverComeTimeOutAsTheKubelet) {
  run("v4.channel.k8s.io", {.command = {"true"},
                            .use_stdin = true,
                            .use_stdout = true,
                            .stream_creation_timeout = 200ms});
  openStreams(false, true, false);  // no stdin stream
  ASSERT_TRUE(runUntil([&] { return done_; }));
  EXPECT_EQ(outcome_.kind, ExecOutcome::Kind::kFailed);
  EXPECT_EQ(outcome_.error, "timed out waiting for client to create streams");
  EXPECT_EQ(starter_.starts, 0) << "nothing runs without its streams";
  EXPECT_EQ(t_->close_calls, 1);
}

TEST_F(RemoteCommandTest, AStartFailureIsAnInternalErrorStatus) {
  run("v4.channel.k8s.io", {.command = {"/nonexistent/cmd"}, .use_stdout = true});
  openStreams(false, true, false);
  ASSERT_TRUE(runUntil([&] { return done_; }));
  std::string why =
      "error executing command in container: exec `/nonexistent/cmd`: No such file or directory";
  EXPECT_EQ(t_->written[kError],
            R"({"metadata":{},"status":"Failure","message":"Internal error occurred: )" + why +
                R"(","reason":"InternalError","details":{"causes":[{"message":")" + why +
                R"("}]},"code":500})");
  EXPECT_EQ(t_->close_calls, 1);
  EXPECT_EQ(outcome_.kind, ExecOutcome::Kind::kFailed);
}

TEST_F(RemoteCommandTest, UnknownAndDuplicateStreamsAreReset) {
  run("v4.channel.k8s.io", {.command = {"true"}, .use_stdout = true});
  t_->open(kError, {.type = "error"});
  t_->open(11, {.type = "bogus"});
  t_->open(13, {.type = "error"});
  EXPECT_TRUE(t_->resets[11]);
  EXPECT_TRUE(t_->resets[13]);
  t_->open(kStdout, {.type = "stdout"});
  ASSERT_TRUE(runUntil([&] { return done_; }));
  EXPECT_EQ(outcome_.exit_code, 0);
}

// The client goes mid-run: our ends close, so the process sees EOF (stdin),
// SIGPIPE (stdout) or SIGHUP (its terminal); it is reaped and no fd is left.
TEST_F(RemoteCommandTest, AClientGoneEarlyLeavesNoProcessNorFd) {
  struct Case {
    RemoteCommandOptions opts;
    int exit_code;
  };
  std::vector<Case> cases{
      {{.command = {"cat"}, .use_stdin = true, .use_stdout = true}, 0},
      {{.command = {"sh", "-c", "while :; do echo y; done"}, .use_stdout = true}, 128 + SIGPIPE},
      {{.command = {"sh", "-c", "echo ready; read x"},
        .use_stdin = true,
        .use_stdout = true,
        .tty = true},
       128 + SIGHUP},
  };
  // The loop's own descriptors (epoll, eventfd, timerfd) come with its first
  // timer: made before counting.
  boost::asio::steady_timer warm_up(ioc_);
  for (auto& c : cases) {
    SCOPED_TRACE(c.opts.command.back());
    t_ = std::make_shared<FakeTransport>(ioc_);
    done_ = false;
    int before = countFds();
    bool tty = c.opts.tty;
    run("v4.channel.k8s.io", c.opts);
    openStreams(c.opts.use_stdin, true, false, tty);
    if (c.opts.command[0] == "cat") {
      t_->send(kStdin, "x\n");
    }
    // Running for sure: it wrote.
    ASSERT_TRUE(runUntil([&] { return !t_->written[kStdout].empty(); }));
    t_->clientGone("the client went");
    ASSERT_TRUE(runUntil([&] { return done_; }));
    EXPECT_EQ(outcome_.exit_code, c.exit_code);
    EXPECT_EQ(::kill(starter_.pids_.back(), 0), -1) << "reaped";
    EXPECT_EQ(countFds(), before);
  }
}

}  // namespace
}  // namespace kernelet::agent::streams
