// The caller's side of terminals (receive the master, resize it) and the
// checks of a terminal spec, on the host: no container, a pty of the host's
// devpts stands in for the container's.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "isolation/child_plan.h"
#include "isolation/terminal.h"
#include "support/temp_dir.h"

namespace kernelet::isolation {
namespace {

// Sends `fds` with `data` as one message, as the child does.
void sendFds(int socket, const std::string& data, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ASSERT_EQ(::sendmsg(socket, &msg, 0), static_cast<ssize_t>(data.size()));
}

int openFds() {
  int n = 0;
  for (int fd = 0; fd < 1024; fd++) {
    n += ::fcntl(fd, F_GETFD) >= 0 ? 1 : 0;
  }
  return n;
}

class TerminalCaller : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv_), 0);
    master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master_ < 0) {
      GTEST_SKIP() << "no pseudo-terminals on this host: " << std::strerror(errno);
    }
  }
  void TearDown() override {
    for (int fd : {sv_[0], sv_[1], master_}) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  }
  int sv_[2] = {-1, -1};
  int master_ = -1;
};

TEST_F(TerminalCaller, ReceivesTheMasterAndItsName) {
  int before = openFds();
  sendFds(sv_[1], "/dev/pts/7", {master_});
  auto t = receiveTerminal(sv_[0]);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->name, "/dev/pts/7");
  // A new descriptor of the same terminal, close-on-exec.
  EXPECT_NE(t->master.get(), master_);
  EXPECT_EQ(::fcntl(t->master.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  unsigned a = 0, b = 1;
  ASSERT_EQ(::ioctl(t->master.get(), TIOCGPTN, &a), 0);
  ASSERT_EQ(::ioctl(master_, TIOCGPTN, &b), 0);
  EXPECT_EQ(a, b);
  EXPECT_EQ(openFds(), before + 1);
}

TEST_F(TerminalCaller, AClosedSocketIsAnError) {
  ::close(sv_[1]);
  sv_[1] = -1;
  auto t = receiveTerminal(sv_[0]);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message(),
            "receive terminal `console socket`: closed before a terminal was sent: the process "
            "failed or died in setup");
}

TEST_F(TerminalCaller, ANonBlockingSocketSaysNotYet) {
  ASSERT_EQ(::fcntl(sv_[0], F_SETFL, O_NONBLOCK), 0);
  auto t = receiveTerminal(sv_[0]);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().errnum, EAGAIN);
}

TEST_F(TerminalCaller, WhatIsNotOneMasterIsRefusedAndNothingLeaks) {
  int before = openFds();
  sendFds(sv_[1], "/dev/pts/1", {master_, master_});
  auto two = receiveTerminal(sv_[0]);
  ASSERT_FALSE(two);
  EXPECT_NE(two.error().message().find("expected one descriptor, got 2"), std::string::npos)
      << two.error().message();
  sendFds(sv_[1], "/dev/pts/1", {sv_[1]});
  auto socket = receiveTerminal(sv_[0]);
  ASSERT_FALSE(socket);
  EXPECT_NE(socket.error().message().find("not a pseudo-terminal master"), std::string::npos)
      << socket.error().message();
  sendFds(sv_[1], "x", {});
  auto none = receiveTerminal(sv_[0]);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("got 0"), std::string::npos);
  EXPECT_EQ(openFds(), before);
}

TEST_F(TerminalCaller, SetsTheWindowAndRefusesAnEmptyOne) {
  ASSERT_TRUE(setWindowSize(master_, {.rows = 33, .cols = 101}));
  winsize ws{};
  ASSERT_EQ(::ioctl(master_, TIOCGWINSZ, &ws), 0);
  EXPECT_EQ(ws.ws_row, 33);
  EXPECT_EQ(ws.ws_col, 101);
  auto zero = setWindowSize(master_, {.rows = 0, .cols = 80});
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().message(), "set window size `rows`: must be in [1, 65535], got 0");
  auto wide = setWindowSize(master_, {.rows = 24, .cols = 70000});
  ASSERT_FALSE(wide);
  EXPECT_EQ(wide.error().message(), "set window size `cols`: must be in [1, 65535], got 70000");
  auto notty = setWindowSize(sv_[0], {.rows = 24, .cols = 80});
  ASSERT_FALSE(notty);
  EXPECT_EQ(notty.error().errnum, ENOTTY);
}

TEST(ConsoleSocket, ConnectsToAListenerAndNamesABadPath) {
  kernelet::testing::TempDir dir;
  std::string path = dir.path() + "/console.sock";
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  auto c = connectConsoleSocket(path);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(::fcntl(c->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ::close(listener);
  auto missing = connectConsoleSocket(dir.path() + "/nope.sock");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            "connect console socket `" + dir.path() + "/nope.sock`: No such file or directory");
  auto long_path = connectConsoleSocket("/" + std::string(200, 'x'));
  ASSERT_FALSE(long_path);
  EXPECT_NE(long_path.error().message().find("must be 1 to 107 bytes long"), std::string::npos);
}

// A terminal comes with its console socket and instead of other stdio;
// a socket or a size without one is refused, each naming the field.
TEST(TerminalSpec, IsAllOrNothing) {
  ContainerSpec s;
  s.argv = {"sh"};
  s.namespaces = {{Namespace::kMount, "/proc/self/ns/mnt"}};
  s.join_running = true;
  s.terminal = true;
  auto no_socket = buildPlan(s);
  ASSERT_FALSE(no_socket);
  EXPECT_EQ(no_socket.error().message(),
            "container spec `process.terminal`: a terminal needs a console socket to send its "
            "master to");
  s.console_socket_fd = 9;
  s.stdout_fd = 1;
  auto with_stdio = buildPlan(s);
  ASSERT_FALSE(with_stdio);
  EXPECT_NE(with_stdio.error().message().find("give no other"), std::string::npos);
  s.stdout_fd = -1;
  s.console_size = ConsoleSize{.rows = 24, .cols = 80};
  auto ok = buildPlan(s);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_TRUE(ok->terminal.enabled);
  EXPECT_TRUE(ok->terminal.set_size);
  EXPECT_EQ(ok->terminal.size.ws_row, 24);
  EXPECT_EQ(ok->terminal.size.ws_col, 80);
  EXPECT_EQ(ok->console_socket, 9);

  s.terminal = false;
  s.console_socket_fd = -1;
  auto size_alone = buildPlan(s);
  ASSERT_FALSE(size_alone);
  EXPECT_EQ(size_alone.error().message(),
            "container spec `process.consoleSize`: given without process.terminal");
  s.console_size.reset();
  s.console_socket_fd = 9;
  auto socket_alone = buildPlan(s);
  ASSERT_FALSE(socket_alone);
  EXPECT_EQ(socket_alone.error().message(),
            "container spec `console socket`: given without process.terminal");
}

}  // namespace
}  // namespace kernelet::isolation
