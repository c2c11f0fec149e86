// Terminals in containers, in the test VM: made in the container's devpts,
// the process's controlling terminal, its master sent over the console
// socket; the child stays not dumpable through the terminal's set-up.
#include "isolation/terminal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <regex>
#include <thread>

#include "isolation/isolation.h"
#include "support/privileged.h"
#include "support/process_util.h"

namespace kernelet::isolation {
namespace {

using Clock = std::chrono::steady_clock;

ContainerSpec baseSpec(std::vector<std::string> argv) {
  ContainerSpec s;
  s.argv = std::move(argv);
  s.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  s.rootfs = KERNELET_FIXTURE_ROOTFS;
  s.hostname = "ctr";
  for (Namespace n : {Namespace::kPid, Namespace::kMount, Namespace::kUts, Namespace::kIpc,
                      Namespace::kNet, Namespace::kCgroup}) {
    s.namespaces.push_back({n, ""});
  }
  s.mounts = defaultMounts();
  std::vector<std::string> caps = defaultCapabilities();
  s.capabilities = {caps, caps, caps, {}, {}};
  s.masked_paths = defaultMaskedPaths();
  s.readonly_paths = defaultReadonlyPaths();
  return s;
}

// One console socket: the child's end goes into the spec, ours receives.
struct Console {
  UniqueFd ours, theirs;
  static Console make() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    return Console{UniqueFd(sv[0]), UniqueFd(sv[1])};
  }
};

// Reads the master until `done` holds for what was read, or until the
// terminal's end (EIO once the last slave is closed), 20 s at most.
std::string readTerminal(int master, const std::function<bool(const std::string&)>& done = {}) {
  std::string out;
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline && !(done && done(out))) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) {
      continue;
    }
    char buf[4096];
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) {
      break;  // EIO: the process and everything holding the slave are gone
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void write(int fd, const std::string& s) {
  ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

class TerminalTest : public ::testing::Test {
 protected:
  void SetUp() override { KERNELET_REQUIRE_PRIVILEGED(); }
};

// As `kernelet oci run` with process.terminal: the terminal is the new
// container's first one, of its own devpts, as 0, 1 and 2 and nothing else.
TEST_F(TerminalTest, ANewContainersTerminalIsOfItsDevpts) {
  ContainerSpec s = baseSpec({"sh", "-c",
                              "tty; stty size; set -- $(cat /proc/$$/stat); "
                              "echo \"pid=$1 sid=$6 tty_nr=$7\"; ls -1 /proc/self/fd"});
  Console console = Console::make();
  s.terminal = true;
  s.console_socket_fd = console.theirs.get();
  s.console_size = ConsoleSize{.rows = 33, .cols = 101};
  auto proc = start(s);
  ASSERT_TRUE(proc) << proc.error().message();
  console.theirs.reset();
  auto t = receiveTerminal(console.ours.get());
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->name, "/dev/pts/0");
  std::string out = readTerminal(t->master.get());
  auto status = proc->wait();
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->code, 0) << out;
  // pid 1 leads its session, the terminal (136:0, /dev/pts/0) controls it;
  // ls sees 0, 1, 2 and its own directory: no master, no socket.
  EXPECT_EQ(out, "/dev/pts/0\r\n33 101\r\npid=1 sid=1 tty_nr=34816\r\n0\r\n1\r\n2\r\n3\r\n");
  // The socket carried one message and ended.
  auto again = receiveTerminal(console.ours.get());
  EXPECT_FALSE(again);
}

// kubectl exec -it: an interactive shell in a running container, its window
// resized while it runs.
TEST_F(TerminalTest, AnExecIntoARunningContainerIsInteractive) {
  ContainerSpec c = baseSpec({"sleep", "600"});
  auto ctr = start(c);
  ASSERT_TRUE(ctr) << ctr.error().message();
  ContainerSpec e = execSpec(c, ctr->pid(), {"sh"});
  Console console = Console::make();
  e.terminal = true;
  e.console_socket_fd = console.theirs.get();
  e.console_size = ConsoleSize{.rows = 24, .cols = 80};
  auto proc = start(e);
  ASSERT_TRUE(proc) << proc.error().message();
  console.theirs.reset();
  auto t = receiveTerminal(console.ours.get());
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->name, "/dev/pts/0");
  int m = t->master.get();

  write(m,
        "stty size; tty; set -- $(cat /proc/$$/stat); echo \"pid=$1 pgrp=$5 sid=$6 "
        "tty_nr=$7 tpgid=$8\"\n");
  std::regex fields("pid=(\\d+) pgrp=(\\d+) sid=(\\d+) tty_nr=(\\d+) tpgid=(\\d+)");
  std::smatch f;
  std::string out = readTerminal(m, [&](const std::string& s) {
    return std::regex_search(s, f, fields) && s.find("\n", f.position(0)) != std::string::npos;
  });
  ASSERT_TRUE(std::regex_search(out, f, fields)) << out;
  EXPECT_NE(out.find("\r\n24 80\r\n/dev/pts/0\r\n"), std::string::npos) << out;
  EXPECT_EQ(f[1], f[3]) << "not its session's leader: " << out;
  EXPECT_EQ(f[4], "34816") << "/dev/pts/0 is not its controlling terminal: " << out;
  EXPECT_EQ(f[2], f[5]) << "not the terminal's foreground group: " << out;
  EXPECT_NE(f[1], "1") << "the exec is not pid 1 of the container";

  ASSERT_TRUE(setWindowSize(m, {.rows = 50, .cols = 132}));
  write(m, "stty size; exit 5\n");
  out = readTerminal(m);
  EXPECT_NE(out.find("\r\n50 132\r\n"), std::string::npos) << out;
  auto status = proc->wait();
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->code, 5);
  (void)ctr->signal(SIGKILL);
  (void)ctr->wait();
}

// The exec child holds a copy of the agent until its execve. Here it waits,
// its terminal made and its user switched, on a start FIFO, while a process
// of the same user in the container hunts it: its memory, environment, exe
// and ptrace must stay out of reach. fs.suid_dumpable=1 makes the kernel
// leave a process dumpable after a uid change, so only the child's own
// PR_SET_DUMPABLE keeps it hidden.
TEST_F(TerminalTest, AnExecChildWithATerminalCannotBeInspectedBeforeItsExec) {
  std::string saved = kernelet::testing::readAll(::open("/proc/sys/fs/suid_dumpable", O_RDONLY));
  std::ofstream("/proc/sys/fs/suid_dumpable") << "1";
  struct Restore {
    std::string value;
    ~Restore() { std::ofstream("/proc/sys/fs/suid_dumpable") << value; }
  } restore{saved};

  ContainerSpec c = baseSpec({"kt-escape", "hunt", "6"});
  c.uid = c.gid = 1000;
  c.capabilities = {};
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  UniqueFd hunter_out(out[0]);
  c.stdout_fd = c.stderr_fd = out[1];
  auto hunter = start(c);
  ::close(out[1]);
  ASSERT_TRUE(hunter) << hunter.error().message();

  std::string fifo = "/proc/" + std::to_string(hunter->pid()) + "/root/dev/shm/go";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  ASSERT_EQ(::chmod(fifo.c_str(), 0622), 0);
  ContainerSpec e =
      execSpec(c, hunter->pid(), {"sh", "-c", "stat -c %u $(tty); ls -1 /proc/self/fd"});
  Console console = Console::make();
  e.terminal = true;
  e.console_socket_fd = console.theirs.get();
  e.start_fifo = "/dev/shm/go";
  auto child = start(e);  // returns once the child waits on the FIFO
  ASSERT_TRUE(child) << child.error().message();
  console.theirs.reset();
  auto t = receiveTerminal(console.ours.get());
  ASSERT_TRUE(t) << t.error().message();
  // The hunter chases a process for 2 s; it has the child that long.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  UniqueFd go(::open(fifo.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(go);
  char byte;
  ASSERT_EQ(::read(go.get(), &byte, 1), 1);

  std::string tty_out = readTerminal(t->master.get());
  auto status = child->wait();
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->code, 0) << tty_out;
  // The process's user owns its terminal; it has 0, 1, 2 and ls's directory.
  EXPECT_EQ(tty_out, "1000\r\n0\r\n1\r\n2\r\n3\r\n");

  std::string log = kernelet::testing::readAll(hunter_out.release());
  (void)hunter->wait();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      log, m, std::regex("hunt: pids=(\\d+) early=(\\d+) exposed=(\\d+) escapes=(\\d+)")))
      << log;
  EXPECT_EQ(log.find("ESCAPE"), std::string::npos) << log;
  EXPECT_EQ(m[3].str(), "0") << log;
  // Else the hunter never met the child before its exec and proved nothing.
  EXPECT_GT(std::stoi(m[2].str()), 0) << log;
}

// A terminal that cannot be made fails the start with op and path, and the
// console socket sees the end without a terminal.
TEST_F(TerminalTest, AContainerWithoutDevptsFailsClearly) {
  ContainerSpec s = baseSpec({"true"});
  std::erase_if(s.mounts, [](const Mount& m) { return m.destination == "/dev/pts"; });
  Console console = Console::make();
  s.terminal = true;
  s.console_socket_fd = console.theirs.get();
  auto proc = start(s);
  console.theirs.reset();
  ASSERT_FALSE(proc);
  EXPECT_EQ(proc.error().message(), "open pty master `/dev/pts/ptmx`: No such file or directory");
  auto t = receiveTerminal(console.ours.get());
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message().find("closed before a terminal was sent"), std::string::npos);
}

}  // namespace
}  // namespace kernelet::isolation
