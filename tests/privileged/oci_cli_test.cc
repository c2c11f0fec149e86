// `kernelet oci` as crun's and runc's users drive it, in the test VM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/privileged.h"

namespace {

namespace fs = std::filesystem;

struct Ran {
  int status = -1;
  std::string out, err;
};

// Runs kernelet with `args`, capturing stdout and stderr apart. Files, not
// pipes: a created container keeps the stdio it inherited open after
// `kernelet oci create` exits, as with runc.
// `closed`: descriptors kernelet is started without (as `>&-` in a shell).
Ran kernelet(const std::vector<std::string>& args, pid_t* started = nullptr,
             const std::vector<int>& closed = {}) {
  char out_tmpl[] = "/tmp/kernelet-out.XXXXXX";
  char err_tmpl[] = "/tmp/kernelet-err.XXXXXX";
  int out = ::mkstemp(out_tmpl);
  int err = ::mkstemp(err_tmpl);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out, 1);
    ::dup2(err, 2);
    for (int fd : closed) {
      ::close(fd);
    }
    std::vector<char*> argv = {const_cast<char*>(KERNELET_BINARY)};
    for (const auto& a : args) {
      argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (started != nullptr) {
    *started = pid;
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  Ran r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  auto slurp = [](int fd, const char* path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    ::close(fd);
    ::unlink(path);
    return ss.str();
  };
  r.out = slurp(out, out_tmpl);
  r.err = slurp(err, err_tmpl);
  return r;
}

std::string quote(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) {
    out += (out.empty() ? "\"" : ", \"") + a + "\"";
  }
  return out;
}

class OciCli : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    char tmpl[] = "/tmp/kernelet-oci-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/state";
    bundle_ = dir_ + "/bundle";
    fs::create_directories(bundle_);
    fs::create_directory_symlink(KERNELET_FIXTURE_ROOTFS, bundle_ + "/rootfs");
  }
  void TearDown() override {
    if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }
  void writeConfig(const std::vector<std::string>& args, const std::string& resources = "{}",
                   const std::string& extra_linux = "") {
    std::ofstream(bundle_ + "/config.json") << R"({
      "ociVersion": "1.0.2",
      "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": [)" +
                                                   quote(args) + R"(],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": "/",
        "capabilities": {"bounding": ["CAP_KILL", "CAP_MKNOD"], "effective": ["CAP_KILL", "CAP_MKNOD"],
                         "permitted": ["CAP_KILL", "CAP_MKNOD"]},
        "noNewPrivileges": true},
      "root": {"path": "rootfs", "readonly": true},
      "hostname": "oci",
      "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                 {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                 {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
      "linux": {"resources": )" + resources + extra_linux +
                                                   R"(,
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}
    })";
  }
  // Replaces `from` with `to` in the bundle's config.json.
  void editConfig(const std::string& from, const std::string& to) {
    std::string path = bundle_ + "/config.json";
    std::stringstream text;
    text << std::ifstream(path).rdbuf();
    std::string s = text.str();
    size_t at = s.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    std::ofstream(path) << s;
  }
  std::vector<std::string> oci(std::vector<std::string> args) {
    args.insert(args.begin(), {"oci", "--root", root_});
    return args;
  }
  std::string stateOf(const std::string& id) {
    Ran r = kernelet(oci({"state", id}));
    auto at = r.out.find("\"status\": \"");
    return at == std::string::npos ? r.err
                                   : r.out.substr(at + 11, r.out.find('"', at + 11) - at - 11);
  }
  bool nothingLeftOf(const std::string& id) {
    return !fs::exists(root_ + "/" + id) && !fs::exists("/sys/fs/cgroup/kernelet-oci/" + id);
  }
  std::string dir_, root_, bundle_;
};

// A listening AF_UNIX socket at `path`, as recvtty's.
int listenAt(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(fd, 1), 0);
  return fd;
}

// What recvtty does with a connection: one message, the terminal's name as
// data and its master as SCM_RIGHTS. -1 if there was none.
int receiveMaster(int conn, std::string* name) {
  char data[256];
  iovec iov{data, sizeof data};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) {
    return -1;
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  name->assign(data, static_cast<size_t>(n));
  return fd;
}

// Everything the terminal prints until its process ends (EIO), 20 s at most.
std::string readTerminal(int master) {
  std::string out;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) {
      continue;
    }
    char buf[1024];
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST_F(OciCli, RunIsForegroundWithTheContainersOutputAndStatus) {
  writeConfig({"sh", "-c", "echo hello from $(hostname); echo err >&2; exit 7"});
  Ran r = kernelet(oci({"run", "--bundle", bundle_, "c1"}));
  EXPECT_EQ(r.status, 7);
  EXPECT_EQ(r.out, "hello from oci\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_TRUE(nothingLeftOf("c1"));
}

TEST_F(OciCli, CreateStartStateKillDelete) {
  writeConfig({"kt-sleep"});
  std::string pidfile = dir_ + "/pid";
  Ran c = kernelet(oci({"create", "--bundle", bundle_, "--pid-file", pidfile, "c2"}));
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(stateOf("c2"), "created");
  std::string pid;
  std::ifstream(pidfile) >> pid;
  EXPECT_NE(kernelet(oci({"state", "c2"})).out.find("\"pid\": " + pid), std::string::npos);

  ASSERT_EQ(kernelet(oci({"start", "c2"})).status, 0);
  EXPECT_EQ(stateOf("c2"), "running");
  Ran busy = kernelet(oci({"delete", "c2"}));
  EXPECT_EQ(busy.status, 1);
  EXPECT_EQ(busy.err,
            "kernelet oci: delete container `c2`: cannot delete a container that is "
            "running (use --force)\n");

  ASSERT_EQ(kernelet(oci({"kill", "c2", "KILL"})).status, 0);
  for (int i = 0; i < 200 && stateOf("c2") != "stopped"; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(stateOf("c2"), "stopped");
  EXPECT_EQ(kernelet(oci({"delete", "c2"})).status, 0);
  EXPECT_TRUE(nothingLeftOf("c2"));
  EXPECT_EQ(kernelet(oci({"state", "c2"})).err, "kernelet oci: container `c2`: does not exist\n");
}

TEST_F(OciCli, ForceDeleteKillsACreatedContainer) {
  writeConfig({"true"});
  ASSERT_EQ(kernelet(oci({"create", "--bundle", bundle_, "c3"})).status, 0);
  EXPECT_EQ(kernelet(oci({"delete", "--force", "c3"})).status, 0);
  EXPECT_TRUE(nothingLeftOf("c3"));
}

TEST_F(OciCli, AFailedStartIsReportedAndLeavesNothing) {
  writeConfig({"/bin/nope"});
  Ran r = kernelet(oci({"run", "--bundle", bundle_, "c4"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "kernelet oci: exec `/bin/nope`: No such file or directory\n");
  EXPECT_TRUE(nothingLeftOf("c4"));
  // The same id is free again.
  writeConfig({"true"});
  EXPECT_EQ(kernelet(oci({"run", "--bundle", bundle_, "c4"})).status, 0);
}

TEST_F(OciCli, UnsupportedFieldIsRefusedWithItsName) {
  writeConfig({"true"}, "{}", R"(, "intelRdt": {"closID": "x"})");
  Ran r = kernelet(oci({"run", "--bundle", bundle_, "c5"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "kernelet oci: config.json `" + bundle_ +
                       "/config.json`: linux.intelRdt: not supported by kernelet\n");
  EXPECT_TRUE(nothingLeftOf("c5"));
}

TEST_F(OciCli, ResourcesAreEnforced) {
  writeConfig({"kt-alloc", "64"}, R"({"memory": {"limit": 16777216}})");
  EXPECT_EQ(kernelet(oci({"run", "--bundle", bundle_, "c6"})).status, 128 + SIGKILL);
  writeConfig({"kt-fork", "20"}, R"({"pids": {"limit": 5}})");
  Ran r = kernelet(oci({"run", "--bundle", bundle_, "c7"}));
  EXPECT_EQ(r.status, 1) << r.out;
  // Devices: the config denies all, the defaults add the standard ones back;
  // a block device can be made (mknod is allowed) but not opened.
  writeConfig({"sh", "-c", "echo x > /dev/null && mknod /tmp/disk b 8 0 && head -c1 /tmp/disk"},
              R"({"devices": [{"allow": false, "access": "rwm"}]})");
  Ran d = kernelet(oci({"run", "--bundle", bundle_, "c9"}));
  EXPECT_EQ(d.status, 1);
  EXPECT_NE(d.err.find("/tmp/disk: Operation not permitted"), std::string::npos) << d.err;
}

// A config with device rules of its own, as a GPU container's (eight nodes of
// major 195): the filter loads (6.1 refused it with ENOSPC when it was loaded
// with a 4 KiB verifier log) and each rule holds: kmsg writable, the disk sdb
// reaches its driver (no such device), sda and kmsg's read side do not.
TEST_F(OciCli, DeviceRulesOfTheConfigAreEnforced) {
  std::string devices = R"({"devices": [{"allow": false, "access": "rwm"},
      {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"},
      {"allow": true, "type": "b", "major": 8, "minor": 16, "access": "r"})";
  for (int minor = 0; minor < 8; minor++) {
    devices += R"(, {"allow": true, "type": "c", "major": 195, "minor": )" + std::to_string(minor) +
               R"(, "access": "rw"})";
  }
  writeConfig({"sh", "-c",
               "exec 2>&1; mknod /tmp/kmsg c 1 11 && mknod /tmp/sda b 8 0 && "
               "mknod /tmp/sdb b 8 16 && echo made; "
               "echo kernelet-oci-device-test >/tmp/kmsg && echo kmsg written; "
               "(exec 3</tmp/sdb); (exec 3</tmp/sda); (exec 3</tmp/kmsg); true"},
              devices + "]}");
  Ran r = kernelet(oci({"run", "--bundle", bundle_, "c10"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "made\nkmsg written\n"
            "sh: can't open /tmp/sdb: No such device or address\n"
            "sh: can't open /tmp/sda: Operation not permitted\n"
            "sh: can't open /tmp/kmsg: Operation not permitted\n");
  EXPECT_TRUE(nothingLeftOf("c10"));
}

TEST_F(OciCli, SignalsAreForwardedToTheContainer) {
  writeConfig({"kt-sleep"});
  pid_t runner = -1;
  Ran r;
  std::thread t([&] { r = kernelet(oci({"run", "--bundle", bundle_, "c8"}), &runner); });
  for (int i = 0; i < 500 && stateOf("c8") != "running"; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(runner, 0);
  ::kill(runner, SIGTERM);
  t.join();
  EXPECT_EQ(r.status, 0);  // kt-sleep exits 0 on SIGTERM
  EXPECT_EQ(r.out, "kt-sleep: got SIGTERM\n");
  EXPECT_TRUE(nothingLeftOf("c8"));
}

TEST_F(OciCli, RootfsPropagationSharedMakesTheRootShared) {
  // pivot_root refuses a shared root (EINVAL): the propagation comes after it.
  for (const char* propagation : {"shared", "rshared"}) {
    writeConfig({"cat", "/proc/self/mountinfo"}, "{}",
                std::string(R"(, "rootfsPropagation": ")") + propagation + "\"");
    Ran r = kernelet(oci({"run", "--bundle", bundle_, "c10"}));
    ASSERT_EQ(r.status, 0) << propagation << ": " << r.err;
    // The root's line: mount point (field 5) "/", then options, then the
    // optional fields, where a shared mount has "shared:N".
    std::istringstream in(r.out);
    std::string root_line;
    for (std::string l; std::getline(in, l);) {
      std::istringstream f(l);
      std::string id, parent, dev, source, point;
      if (f >> id >> parent >> dev >> source >> point && point == "/") {
        root_line = l;
      }
    }
    EXPECT_NE(root_line.find(" shared:"), std::string::npos) << propagation << ": " << r.out;
    EXPECT_TRUE(nothingLeftOf("c10"));
  }
}

// The init of a created container waits before its exec, a copy of kernelet
// in the container's namespaces, as root with the container's capabilities.
TEST_F(OciCli, AWaitingInitIsOutOfTheContainersReach) {
  writeConfig({"kt-sleep"});
  std::string pidfile = dir_ + "/pid";
  Ran c = kernelet(oci({"create", "--bundle", bundle_, "--pid-file", pidfile, "c11"}));
  ASSERT_EQ(c.status, 0) << c.err;
  std::string pid;
  std::ifstream(pidfile) >> pid;
  ASSERT_FALSE(pid.empty());

  // From the host: its binary is a sealed copy, not the host's file.
  std::string exe = fs::read_symlink("/proc/" + pid + "/exe");
  EXPECT_TRUE(exe.starts_with("/memfd:kernelet")) << exe;
  for (int mode : {O_WRONLY, O_RDWR}) {
    int fd = ::open(("/proc/" + pid + "/exe").c_str(), mode | O_CLOEXEC);
    bool wrote = fd >= 0 && ::write(fd, "x", 1) == 1;
    if (fd >= 0) {
      ::close(fd);
    }
    EXPECT_FALSE(wrote) << "wrote into the binary of the container's init through its exe link";
  }

  // From inside: a process in its mount namespace, root with the container's
  // capabilities (CAP_KILL, CAP_MKNOD; no CAP_SYS_PTRACE), opens its exe and mem.
  int mnt = ::open(("/proc/" + pid + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(mnt, 0);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  pid_t child = ::fork();
  if (child == 0) {
    int results[3] = {-1, -1, -1};
    if (::setns(mnt, CLONE_NEWNS) == 0 && ::chdir("/") == 0) {
      for (int cap = 0; cap <= 63; cap++) {
        if (cap != CAP_KILL && cap != CAP_MKNOD) {
          ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
      }
      __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
      __user_cap_data_struct d[2] = {};
      d[0].effective = d[0].permitted = (1U << CAP_KILL) | (1U << CAP_MKNOD);
      if (::syscall(SYS_capset, &h, d) == 0) {
        int i = 0;
        for (const char* path : {"/proc/1/status", "/proc/1/exe", "/proc/1/mem"}) {
          int fd = ::open(path, O_RDONLY | O_CLOEXEC);
          results[i++] = fd >= 0 ? 0 : errno;
        }
      }
    }
    (void)!::write(p[1], results, sizeof results);
    ::_exit(0);
  }
  ::close(p[1]);
  ::close(mnt);
  int results[3] = {-1, -1, -1};
  EXPECT_EQ(::read(p[0], results, sizeof results), static_cast<ssize_t>(sizeof results));
  ::close(p[0]);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(results[0], 0) << "the joined process sees the init's /proc/1";
  EXPECT_EQ(results[1], EACCES) << "opened /proc/1/exe of the waiting init";
  EXPECT_EQ(results[2], EACCES) << "opened /proc/1/mem of the waiting init";

  EXPECT_EQ(kernelet(oci({"delete", "--force", "c11"})).status, 0);
  EXPECT_TRUE(nothingLeftOf("c11"));
}

// Sets a /proc/sys file for the life of a test, then puts it back.
class ProcSysSetting {
 public:
  ProcSysSetting(const std::string& path, const std::string& value) : path_(path) {
    std::getline(std::ifstream(path_), saved_);
    if (!saved_.empty()) {
      std::ofstream(path_) << value;
    }
  }
  ~ProcSysSetting() {
    if (!saved_.empty()) {
      std::ofstream(path_) << saved_;
    }
  }

 private:
  std::string path_, saved_;
};

// A non-root container: setresuid made the waiting init dumpable again
// (fs.suid_dumpable=1), so a process of its uid in its namespaces could read
// the agent's memory through /proc/1/mem until the exec.
TEST_F(OciCli, ANonRootWaitingInitStaysUndumpable) {
  ProcSysSetting dumpable("/proc/sys/fs/suid_dumpable", "1");
  ProcSysSetting yama("/proc/sys/kernel/yama/ptrace_scope", "0");  // where there is Yama
  writeConfig({"kt-sleep"});
  editConfig(R"("user": {"uid": 0, "gid": 0})", R"("user": {"uid": 1000, "gid": 1000})");
  // No capabilities: the same uid without any is all it takes.
  editConfig(R"("effective": ["CAP_KILL", "CAP_MKNOD"])", R"("effective": [])");
  editConfig(R"("permitted": ["CAP_KILL", "CAP_MKNOD"])", R"("permitted": [])");
  std::string pidfile = dir_ + "/pid";
  Ran c = kernelet(oci({"create", "--bundle", bundle_, "--pid-file", pidfile, "c12"}));
  ASSERT_EQ(c.status, 0) << c.err;
  std::string pid;
  std::ifstream(pidfile) >> pid;
  ASSERT_FALSE(pid.empty());

  int mnt = ::open(("/proc/" + pid + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(mnt, 0) << std::strerror(errno) << "; state: " << stateOf("c12");
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  pid_t child = ::fork();
  if (child == 0) {
    int results[2] = {-1, -1};
    if (::setns(mnt, CLONE_NEWNS) == 0 && ::chdir("/") == 0 &&
        ::syscall(SYS_setresgid, 1000, 1000, 1000) == 0 &&
        ::syscall(SYS_setresuid, 1000, 1000, 1000) == 0) {
      int i = 0;
      for (const char* path : {"/proc/1/status", "/proc/1/mem"}) {
        int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        results[i++] = fd >= 0 ? 0 : errno;
      }
    }
    (void)!::write(p[1], results, sizeof results);
    ::_exit(0);
  }
  ::close(p[1]);
  ::close(mnt);
  int results[2] = {-1, -1};
  EXPECT_EQ(::read(p[0], results, sizeof results), static_cast<ssize_t>(sizeof results));
  ::close(p[0]);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(results[0], 0) << "the joined process sees the init's /proc/1";
  EXPECT_EQ(results[1], EACCES) << "opened /proc/1/mem of the waiting non-root init";

  // And it starts, as its user (it opens the start FIFO as uid 1000).
  ASSERT_EQ(kernelet(oci({"start", "c12"})).status, 0);
  EXPECT_EQ(stateOf("c12"), "running");
  EXPECT_EQ(kernelet(oci({"delete", "--force", "c12"})).status, 0);
  EXPECT_TRUE(nothingLeftOf("c12"));
}

// Started without stdin and stdout (as by a careless init script), kernelet
// holds them with /dev/null: no file it opens takes their numbers, and the
// container (which inherits them) writes into nothing rather than failing.
TEST_F(OciCli, RunWithStdinAndStdoutClosedBehaves) {
  writeConfig({"sh", "-c", "echo out && ls /proc/self/fd >&2"});
  Ran r = kernelet(oci({"run", "--bundle", bundle_, "c13"}), nullptr, {0, 1});
  EXPECT_EQ(r.status, 0) << r.err;
  // stdin, stdout, stderr and ls's own directory: nothing else of kernelet's.
  EXPECT_EQ(r.err, "0\n1\n2\n3\n");
  EXPECT_TRUE(nothingLeftOf("c13"));
}

}  // namespace

namespace {

const char* kDevpts =
    R"({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                 {"destination": "/tmp")";

// process.terminal as crun and runc are tested: a receiver on the console
// socket gets the master at create, types into the shell after start and
// reads the answers: the container's first terminal, the consoleSize, pid 1
// leading its session.
TEST_F(OciCli, TheTerminalsMasterGoesToTheConsoleSocket) {
  writeConfig({"sh"});
  editConfig(R"("terminal": false)",
             R"("terminal": true, "consoleSize": {"height": 33, "width": 101})");
  editConfig(R"({"destination": "/tmp")", kDevpts);
  std::string sock = dir_ + "/console.sock";
  int listener = listenAt(sock);
  Ran c = kernelet(oci({"create", "--bundle", bundle_, "--console-socket", sock, "t1"}));
  ASSERT_EQ(c.status, 0) << c.err;
  int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(listener);
  ASSERT_GE(conn, 0);
  std::string name;
  int master = receiveMaster(conn, &name);
  ::close(conn);
  ASSERT_GE(master, 0) << "no terminal came over the console socket";
  EXPECT_EQ(name, "/dev/pts/0");
  ASSERT_EQ(kernelet(oci({"start", "t1"})).status, 0);
  std::string typed = "stty size; tty; echo pid=$$ sid=$(cut -d' ' -f6 /proc/$$/stat); exit 3\n";
  ASSERT_EQ(::write(master, typed.data(), typed.size()), static_cast<ssize_t>(typed.size()));
  std::string out = readTerminal(master);
  ::close(master);
  EXPECT_NE(out.find("\r\n33 101\r\n/dev/pts/0\r\npid=1 sid=1\r\n"), std::string::npos) << out;
  for (int i = 0; i < 500 && stateOf("t1") != "stopped"; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(stateOf("t1"), "stopped");
  EXPECT_EQ(kernelet(oci({"delete", "t1"})).status, 0);
  EXPECT_TRUE(nothingLeftOf("t1"));
}

// A terminal needs a console socket (crun's words), a console socket a
// terminal; neither leaves anything behind.
TEST_F(OciCli, TerminalAndConsoleSocketComeTogether) {
  writeConfig({"true"});
  std::string sock = dir_ + "/console.sock";
  int listener = listenAt(sock);
  Ran extra = kernelet(oci({"run", "--bundle", bundle_, "--console-socket", sock, "t2"}));
  EXPECT_EQ(extra.status, 1);
  EXPECT_EQ(extra.err,
            "kernelet oci: create container `t2`: --console-socket is given but "
            "process.terminal is false\n");
  EXPECT_TRUE(nothingLeftOf("t2"));

  editConfig(R"("terminal": false)", R"("terminal": true)");
  Ran create = kernelet(oci({"create", "--bundle", bundle_, "t3"}));
  EXPECT_EQ(create.status, 1);
  EXPECT_EQ(create.err,
            "kernelet oci: create container `t3`: use --console-socket with create when a "
            "terminal is used\n");
  Ran run = kernelet(oci({"run", "--bundle", bundle_, "t3"}));
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.err,
            "kernelet oci: create container `t3`: use --console-socket with run when a "
            "terminal is used\n");
  EXPECT_TRUE(nothingLeftOf("t3"));
  Ran missing =
      kernelet(oci({"run", "--bundle", bundle_, "--console-socket", dir_ + "/nope", "t4"}));
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(missing.err, "kernelet oci: connect console socket `" + dir_ +
                             "/nope`: No such file or directory\n");
  EXPECT_TRUE(nothingLeftOf("t4"));
  ::close(listener);
}

}  // namespace
