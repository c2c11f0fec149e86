// The attach endpoint (agent/streams/attach_endpoint.h): its query, and the
// session (remote_command.h: runRemoteAttach) over a FakeTransport with a
// fake AttachStarter backed by real pipes and a real pty, playing the agent
// that holds a running container's stdio.

#include "agent/streams/attach_endpoint.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <optional>

#include "agent/streams/exec_endpoint.h"
#include "support/remote_command_fixture.h"

namespace kernelet::agent::streams {
namespace {

using namespace std::chrono_literals;
using testing::FakeTransport;

server::Request attachRequest(const std::string& query,
                              std::vector<std::string> params = {"ns", "web", "app"}) {
  auto q = server::Query::parse(query);
  EXPECT_TRUE(q) << query;
  return server::Request{.method = "POST",
                         .path = "/attach/ns/web/app",
                         .params = std::move(params),
                         .query = q ? *q : server::Query{}};
}

TEST(AttachOptions, TheApiServersQueryWithoutACommand) {
  auto o = attachOptions(attachRequest("input=1&output=1&error=1&tty=1"));
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_TRUE(o->use_stdin);
  EXPECT_TRUE(o->use_stdout);
  EXPECT_FALSE(o->use_stderr) << "a terminal merges stderr, as the kubelet";
  EXPECT_TRUE(o->tty);
  EXPECT_TRUE(o->command.empty());
  EXPECT_EQ(o->pod.namespace_, "ns");
  EXPECT_EQ(o->pod.name, "web");
  EXPECT_EQ(o->pod.uid, "");
  EXPECT_EQ(o->container, "app");
}

TEST(AttachOptions, PodAttachOptionsNamesAndTheUidForm) {
  auto o = attachOptions(attachRequest("stdout=true&stderr=true", {"ns", "web", "uid-1", "app"}));
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_FALSE(o->use_stdin);
  EXPECT_TRUE(o->use_stdout);
  EXPECT_TRUE(o->use_stderr);
  EXPECT_EQ(o->pod.uid, "uid-1");
  EXPECT_EQ(o->container, "app");
}

TEST(AttachOptions, TheKubeletsBadRequests) {
  auto none = attachOptions(attachRequest("tty=1"));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().status, 400);
  EXPECT_EQ(none.error().message, "you must specify at least 1 of stdin, stdout, stderr");

  auto bad = attachOptions(attachRequest("input=perhaps"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().status, 400);
  EXPECT_NE(bad.error().message.find("input"), std::string::npos) << bad.error().message;

  auto path = attachOptions(attachRequest("output=1", {"ns", "web"}));
  ASSERT_FALSE(path);
  EXPECT_EQ(path.error().message, "expected /attach/NAMESPACE/POD/[UID/]CONTAINER");
}

TEST(AttachOptions, ProtocolsAreExecsAsTheKubelets) {
  auto a = attachProtocols();
  auto e = execProtocols();
  EXPECT_EQ(a.spdy, e.spdy);
  EXPECT_EQ(a.websocket, e.websocket);
  EXPECT_EQ(a.spdy.front(), "v4.channel.k8s.io");
  EXPECT_EQ(a.websocket.front(), "v5.channel.k8s.io");
}

// The agent's side of a running container: a stdin pipe (or a pty whose
// slave is the container's terminal), and the attach's output pipes, which
// the test writes into as the agent's copier would.
class FakeContainer {
 public:
  AttachStarter fn() {
    return [this](AttachRequest r, AttachHooks h) {
      starts++;
      request = std::move(r);
      hooks = std::move(h);
      if (answer_at_once) {
        answer();
      }
    };
  }

  // The starter's answer: an error (`fail`), or the container's stdio.
  void answer() {
    if (fail) {
      hooks.started(std::unexpected(Error{.op = "attach", .detail = *fail}));
      request = {};  // the output pipes go with the request
      return;
    }
    Attached a;
    if (request.tty) {
      ASSERT_NO_FATAL_FAILURE(testing::openPty(master, slave));
      termios t{};
      ASSERT_EQ(::tcgetattr(slave.get(), &t), 0);
      ::cfmakeraw(&t);  // bytes as typed, no echo
      ASSERT_EQ(::tcsetattr(slave.get(), TCSANOW, &t), 0);
      a.stdin_fd.reset(::fcntl(master.get(), F_DUPFD_CLOEXEC, 0));
      a.terminal_fd.reset(::fcntl(master.get(), F_DUPFD_CLOEXEC, 0));
    } else if (request.stdin && !stdin_closed_before) {
      // The only write end goes to the endpoint, so the test sees it close.
      int p[2];
      ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
      stdin_r.reset(p[0]);
      a.stdin_fd.reset(p[1]);
    }
    a.detach = [this] {
      detaches++;
      request.stdout_fd.reset();  // the agent stops copying: the pipes close
      request.stderr_fd.reset();
    };
    a.stdin_ended = [this] { stdin_ends++; };
    hooks.started(std::move(a));
  }

  // What the container's stdin got: up to `n` bytes, until EOF, or what
  // came within 5 s (then the test fails on the comparison, not hangs).
  std::string readStdin(size_t n) {
    int fd = request.tty ? slave.get() : stdin_r.get();
    std::string got;
    char buf[256];
    while (got.size() < n) {
      pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 5000) != 1) {
        got += "<nothing within 5 s>";
        break;
      }
      ssize_t r = ::read(fd, buf, std::min(sizeof(buf), n - got.size()));
      if (r <= 0) {
        break;
      }
      got.append(buf, static_cast<size_t>(r));
    }
    return got;
  }

  // The container's run ended: the agent closes the pipes after its output.
  void end() {
    request.stdout_fd.reset();
    request.stderr_fd.reset();
    hooks.ended();
  }

  bool answer_at_once = true;
  // stdinOnce closed the container's stdin before: the agent gives none.
  bool stdin_closed_before = false;
  std::optional<std::string> fail;
  int starts = 0, detaches = 0, stdin_ends = 0;
  AttachRequest request;
  AttachHooks hooks;
  UniqueFd stdin_r, master, slave;
};

class AttachSessionTest : public testing::RemoteCommandFixture {
 protected:
  void run(const std::string& protocol, RemoteCommandOptions o) {
    runRemoteAttach(t_, protocol, std::move(o), container_.fn(), [this](const ExecOutcome& out) {
      outcome_ = out;
      done_++;
    });
  }
  static void writeAll(const UniqueFd& fd, std::string_view s) {
    ASSERT_EQ(::write(fd.get(), s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }

  FakeContainer container_;
  ExecOutcome outcome_;
  int done_ = 0;
};

TEST_F(AttachSessionTest, StdinReachesTheContainerOutputTheClientAndItsEndIsSuccess) {
  run("v4.channel.k8s.io", {.pod = {.namespace_ = "ns", .name = "web", .uid = ""},
                            .container = "app",
                            .use_stdin = true,
                            .use_stdout = true,
                            .use_stderr = true});
  openStreams(true, true, true);
  ASSERT_EQ(container_.starts, 1);
  EXPECT_EQ(container_.request.pod.namespace_, "ns");
  EXPECT_EQ(container_.request.pod.name, "web");
  EXPECT_EQ(container_.request.container, "app");
  EXPECT_TRUE(container_.request.stdin);
  EXPECT_FALSE(container_.request.tty);
  ASSERT_TRUE(container_.request.stdout_fd.valid());
  ASSERT_TRUE(container_.request.stderr_fd.valid());
  EXPECT_NE(::fcntl(container_.request.stdout_fd.get(), F_GETFL) & O_NONBLOCK, 0)
      << "the agent never blocks on a slow client";

  t_->send(kStdin, "hello\n");
  ASSERT_TRUE(runUntil([&] { return t_->consumed_bytes[kStdin] == 6; }));
  EXPECT_EQ(container_.readStdin(6), "hello\n");
  writeAll(container_.request.stdout_fd, "out\n");
  writeAll(container_.request.stderr_fd, "err\n");
  ASSERT_TRUE(runUntil([&] { return t_->written[kStdout] == "out\n"; }));
  ASSERT_TRUE(runUntil([&] { return t_->written[kStderr] == "err\n"; }));

  t_->halfClose(kStdin);  // SPDY's FIN: the endpoint's stdin_fd closes
  ASSERT_TRUE(runUntil([&] {
    ioc_.poll();
    return container_.readStdin(1).empty();  // EOF: its only writer closed
  }));
  ASSERT_TRUE(runUntil([&] { return container_.stdin_ends == 1; }))
      << "the agent hears of the client's end of stdin (stdinOnce)";
  EXPECT_EQ(done_, 0) << "the attach goes on while the container runs";

  container_.end();  // the container exited: its output pipes reach EOF
  ASSERT_TRUE(runUntil([&] { return done_ == 1; }));
  EXPECT_EQ(t_->written[kError], R"({"metadata":{},"status":"Success"})");
  EXPECT_TRUE(t_->finished[kStdout]);
  EXPECT_TRUE(t_->finished[kError]);
  EXPECT_EQ(t_->close_calls, 1);
  EXPECT_EQ(outcome_.kind, ExecOutcome::Kind::kExited);
  EXPECT_EQ(outcome_.exit_code, 0);
  EXPECT_EQ(container_.detaches, 1);
}

// After stdinOnce closed the container's stdin, a later attach with stdin
// joins without it, as containerd's: what the client sends is consumed and
// dropped (never held), its end tells the agent nothing, the output comes.
TEST_F(AttachSessionTest, WithoutTheContainersStdinTheClientsStdinIsDropped) {
  container_.stdin_closed_before = true;
  run("v4.channel.k8s.io", {.use_stdin = true, .use_stdout = true});
  openStreams(true, true, false);
  t_->send(kStdin, "lost\n");
  ASSERT_TRUE(runUntil([&] { return t_->consumed_bytes[kStdin] == 5; }));
  t_->halfClose(kStdin);
  writeAll(container_.request.stdout_fd, "still here\n");
  ASSERT_TRUE(runUntil([&] { return t_->written[kStdout] == "still here\n"; }));
  EXPECT_EQ(container_.stdin_ends, 0);
  EXPECT_EQ(done_, 0);
  container_.end();
  ASSERT_TRUE(runUntil([&] { return done_ == 1; }));
  EXPECT_EQ(t_->written[kError], R"({"metadata":{},"status":"Success"})");
  EXPECT_EQ(container_.detaches, 1);
}

TEST_F(AttachSessionTest, OutputEofAloneEndsIt) {
  run("v3.channel.k8s.io", {.use_stdout = true});
  openStreams(false, true, false);
  writeAll(container_.request.stdout_fd, "last words\n");
  container_.request.stdout_fd.reset();  // the agent closed it after the container's last output
  ASSERT_TRUE(runUntil([&] { return done_ == 1; }));
  EXPECT_EQ(t_->written[kStdout], "last words\n");
  EXPECT_FALSE(t_->written.contains(kError)) << "v3 writes nothing on success";
  EXPECT_EQ(container_.detaches, 1);
}

TEST_F(AttachSessionTest, WithoutOutputTheContainersEndEndsIt) {
  run("v4.channel.k8s.io", {.use_stdin = true});
  openStreams(true, false, false);
  EXPECT_FALSE(container_.request.stdout_fd.valid());
  EXPECT_FALSE(container_.request.stderr_fd.valid());
  t_->send(kStdin, "x");
  ASSERT_TRUE(runUntil([&] { return t_->consumed_bytes[kStdin] == 1; }));
  ioc_.poll();
  EXPECT_EQ(done_, 0) << "attached until the container's run ends";
  EXPECT_EQ(t_->close_calls, 0);
  EXPECT_EQ(container_.readStdin(1), "x");
  container_.hooks.ended();
  ASSERT_TRUE(runUntil([&] { return done_ == 1; }));
  EXPECT_EQ(t_->written[kError], R"({"metadata":{},"status":"Success"})");
  EXPECT_EQ(container_.detaches, 1);
}

TEST_F(AttachSessionTest, WebSocketV5AnnouncesReadinessAndItsCloseSignalClosesStdin) {
  run("v5.channel.k8s.io", {.use_stdin = true, .use_stdout = true, .websocket = true});
  openStreams(true, true, false);
  ASSERT_TRUE(runUntil([&] { return t_->written.contains(kStdout); }));
  EXPECT_EQ(t_->written[kStdout], "") << "the kubelet's empty first message on stdout";
  t_->send(kStdin, "abc");
  t_->halfClose(kStdin);  // the v5 CLOSE signal for channel 0
  ASSERT_TRUE(runUntil([&] {
    ioc_.poll();
    return t_->consumed_bytes[kStdin] == 3;
  }));
  EXPECT_EQ(container_.readStdin(4), "abc") << "then EOF";
  container_.end();
  ASSERT_TRUE(runUntil([&] { return done_ == 1; }));
  EXPECT_EQ(t_->written[kError], R"({"metadata":{},"status":"Success"})");
}

TEST_F(AttachSessionTest, ATerminalTakesStdinAndSizesEvenThoseSentBeforeItCame) {
  container_.answer_at_once = false;
  run("v4.channel.k8s.io",
      {.use_stdin = true, .use_stdout = true, .use_stderr = true, .tty = true});
  openStreams(true, true, false, true);
  ASSERT_EQ(container_.starts, 1);
  EXPECT_TRUE(container_.request.tty);
  EXPECT_FALSE(container_.request.stderr_fd.valid()) << "a terminal's output is all stdout";
  // kubectl sends the size and the first keys before the agent answered.
  t_->send(kResize, R"({"Width":100,"Height":37})");
  t_->send(kStdin, "ls\r");
  ioc_.poll();
  EXPECT_EQ(t_->consumed_bytes[kStdin], 0u) << "held (flow control) until the terminal is there";
  container_.answer();
  ASSERT_TRUE(runUntil([&] { return t_->consumed_bytes[kStdin] == 3; }));
  EXPECT_EQ(container_.readStdin(3), "ls\r");
  winsize ws{};
  ASSERT_EQ(::ioctl(container_.slave.get(), TIOCGWINSZ, &ws), 0);
  EXPECT_EQ(ws.ws_row, 37);
  EXPECT_EQ(ws.ws_col, 100);
  t_->send(kResize, R"({"Width":50,"Height":20})");
  ASSERT_TRUE(runUntil([&] {
    winsize now{};
    return ::ioctl(container_.slave.get(), TIOCGWINSZ, &now) == 0 && now.ws_row == 20 &&
           now.ws_col == 50;
  }));
  writeAll(container_.request.stdout_fd, "prompt$ ");
  ASSERT_TRUE(runUntil([&] { return t_->written[kStdout] == "prompt$ "; }));
  t_->clientGone("kubectl went");
  ASSERT_TRUE(runUntil([&] { return done_ == 1; }));
  EXPECT_EQ(container_.detaches, 1);
}

TEST_F(AttachSessionTest, AStarterErrorIsTheKubeletsInternalErrorAndNoDetach) {
  container_.fail = "container app is not running";
  run("v4.channel.k8s.io", {.use_stdin = true, .use_stdout = true});
  openStreams(true, true, false);
  ASSERT_TRUE(runUntil([&] { return done_ == 1; }));
  std::string why = "error attaching to container: " +
                    Error{.op = "attach", .detail = "container app is not running"}.message();
  EXPECT_EQ(t_->written[kError],
            R"({"metadata":{},"status":"Failure","message":"Internal error occurred: )" + why +
                R"(","reason":"InternalError","details":{"causes":[{"message":")" + why +
                R"("}]},"code":500})");
  EXPECT_EQ(t_->close_calls, 1);
  EXPECT_EQ(outcome_.kind, ExecOutcome::Kind::kFailed);
  EXPECT_EQ(container_.detaches, 0);

  // v1-v3: the message alone.
  t_ = std::make_shared<FakeTransport>(ioc_);
  run("v2.channel.k8s.io", {.use_stdout = true});
  openStreams(false, true, false);
  ASSERT_TRUE(runUntil([&] { return done_ == 2; }));
  EXPECT_EQ(t_->written[kError], "Internal error occurred: " + why);
}

// The client goes while attached, or before the agent answered: detach
// runs once either way, and nothing of ours is left open.
TEST_F(AttachSessionTest, AClientGoneDetachesOnceAndLeavesNoFd) {
  boost::asio::steady_timer warm_up(ioc_);  // the loop's own fds, made before counting
  for (bool answered : {true, false}) {
    SCOPED_TRACE(answered ? "attached" : "not answered yet");
    container_ = FakeContainer{};
    container_.answer_at_once = answered;
    t_ = std::make_shared<FakeTransport>(ioc_);
    done_ = 0;
    int before = countFds();
    run("v4.channel.k8s.io", {.use_stdin = true, .use_stdout = true, .use_stderr = true});
    openStreams(true, true, true);
    if (answered) {
      writeAll(container_.request.stdout_fd, "x");
      ASSERT_TRUE(runUntil([&] { return t_->written[kStdout] == "x"; }));
    }
    t_->clientGone("the client went");
    ioc_.poll();
    if (!answered) {
      EXPECT_EQ(done_, 0) << "the agent's answer is still awaited";
      container_.answer();
    }
    ASSERT_TRUE(runUntil([&] { return done_ == 1; }));
    EXPECT_EQ(container_.detaches, 1);
    EXPECT_EQ(container_.stdin_ends, 0) << "a client gone is detach's, not a stdin EOF";
    container_.end();  // later events change nothing
    ioc_.poll();
    EXPECT_EQ(container_.detaches, 1);
    EXPECT_EQ(done_, 1);
    container_ = FakeContainer{};
    EXPECT_EQ(countFds(), before);
  }
}

// kubectl attach that never reads: the agent's pipe fills (its writes get
// EAGAIN, so it would cut the reader off) while we hold one chunk.
TEST_F(AttachSessionTest, AClientThatNeverReadsDoesNotMakeUsBuffer) {
  t_->hold_writes = true;
  run("v4.channel.k8s.io", {.use_stdout = true});
  openStreams(false, true, false);
  std::string chunk(4096, 'y');
  size_t accepted = 0;
  // Bounded: a pipe holds at most 1 MiB by default; we stop at 16 MiB.
  while (accepted < (16u << 20)) {
    ioc_.poll();
    ssize_t n = ::write(container_.request.stdout_fd.get(), chunk.data(), chunk.size());
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      break;
    }
    accepted += static_cast<size_t>(n);
  }
  ioc_.poll();
  EXPECT_LT(accepted, 1u << 20) << "the pipe filled: the endpoint stopped reading";
  EXPECT_EQ(t_->writes, 1) << "one chunk in flight until the client takes it";
  EXPECT_LE(t_->written[kStdout].size(), 32u << 10);
  container_.end();
  ASSERT_TRUE(runUntil([&] {
    t_->releaseWrites();
    return done_ == 1;
  }));
  EXPECT_EQ(t_->written[kStdout].size(), accepted) << "all of it, once the client read";
  EXPECT_EQ(container_.detaches, 1);
}

}  // namespace
}  // namespace kernelet::agent::streams
