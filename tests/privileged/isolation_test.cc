// isolation/ for real, in the test VM: containers from the busybox fixture
// rootfs, each behaviour checked from inside the container.
#include "isolation/isolation.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <sstream>
#include <thread>

#include "cgroups/cgroups.h"
#include "isolation/container_exit.h"
#include "isolation/cri_log.h"
#include "support/privileged.h"
#include "support/process_util.h"
#include "support/temp_dir.h"

namespace kernelet::isolation {
namespace {

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

struct Outcome {
  ExitStatus status;
  std::string output;  // stdout and stderr
};

// Runs a container to completion, collecting its output.
Result<Outcome> run(ContainerSpec spec) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return sysError("pipe2");
  }
  UniqueFd w(p[1]);
  spec.stdout_fd = spec.stderr_fd = w.get();
  auto proc = start(spec);
  w.reset();
  Outcome o;
  o.output = kernelet::testing::readAll(p[0]);  // closes the read end on every path
  if (!proc) {
    return std::unexpected(proc.error());
  }
  TRY(o.status, proc->wait());
  return o;
}

int countFds() { return kernelet::testing::countEntries("/proc/self/fd"); }
using kernelet::testing::countLines;

int countChildren() {
  // Zombies or live children of this test process.
  int n = 0;
  DIR* d = ::opendir("/proc");
  std::string me = std::to_string(::getpid());
  while (dirent* e = ::readdir(d)) {
    std::ifstream st(std::string("/proc/") + e->d_name + "/stat");
    std::string pid, comm, state, ppid;
    if (st >> pid >> comm >> state >> ppid && ppid == me) {
      n++;
    }
  }
  ::closedir(d);
  return n;
}

class IsolationTest : public ::testing::Test {
 protected:
  void SetUp() override { KERNELET_REQUIRE_PRIVILEGED(); }
};

TEST_F(IsolationTest, PidOneAndNoHostProcessVisible) {
  auto o = run(baseSpec({"sh", "-c", "echo pid=$$; ls /proc | grep -c '^[0-9]'"}));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->status.code, 0) << o->output;
  std::istringstream in(o->output);
  std::string first;
  int procs = 0;
  in >> first >> procs;
  EXPECT_EQ(first, "pid=1");
  // sh, ls and grep at most: nothing of the host.
  EXPECT_LE(procs, 3) << o->output;
}

TEST_F(IsolationTest, ExecJoinsARunningContainerAsItsUser) {
  ContainerSpec c = baseSpec({"sh", "-c", "echo inside > /tmp/mark; exec sleep 60"});
  c.uid = 1000;
  c.gid = 1000;
  c.capabilities = {};  // a user without capabilities: the exec gets none either
  auto proc = start(c);
  ASSERT_TRUE(proc) << proc.error().message();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the mark is written
  ContainerSpec e = execSpec(
      c, proc->pid(),
      {"sh", "-c", "cat /tmp/mark; hostname; id -u; echo pid=$$; grep CapEff /proc/self/status"});
  auto o = run(e);
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->status.code, 0) << o->output;
  // The container's files, hostname and user; a pid of its pid namespace.
  EXPECT_NE(o->output.find("inside\nctr\n1000\npid="), std::string::npos) << o->output;
  EXPECT_EQ(o->output.find("pid=1\n"), std::string::npos) << o->output;
  EXPECT_NE(o->output.find("CapEff:\t0000000000000000"), std::string::npos) << o->output;
  auto bad = start([&] {
    ContainerSpec b = e;
    b.namespaces.pop_back();
    b.namespaces.erase(b.namespaces.begin() + 1);  // no mount namespace to join
    return b;
  }());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("its mount namespace included"), std::string::npos);
  (void)proc->signal(SIGKILL);
  (void)proc->wait();
}

TEST_F(IsolationTest, HostnameIsTheContainers) {
  auto o = run(baseSpec({"hostname"}));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->output, "ctr\n");
}

TEST_F(IsolationTest, NoHostMountIsVisible) {
  auto o = run(baseSpec({"cat", "/proc/self/mountinfo"}));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->output.find(" 9p "), std::string::npos) << o->output;
  EXPECT_EQ(o->output.find("/run/kernelet-vm"), std::string::npos) << o->output;
  EXPECT_EQ(o->output.find("/var/lib/kernelet"), std::string::npos) << o->output;
  // The container's own root and /proc are there (mount point in field 5).
  EXPECT_TRUE(std::regex_search(o->output, std::regex(R"(^\d+ \d+ \d+:\d+ \S+ / )"))) << o->output;
  EXPECT_NE(o->output.find(" /proc rw,"), std::string::npos) << o->output;
  // Nothing but what the spec mounts: the root, 7 default mounts, masked and read-only paths.
  EXPECT_LE(std::count(o->output.begin(), o->output.end(), '\n'), 30) << o->output;
}

TEST_F(IsolationTest, ReadonlyRootfsWhenAsked) {
  ContainerSpec ro = baseSpec({"sh", "-c", "touch /probe && echo wrote"});
  ro.readonly_rootfs = true;
  auto o = run(ro);
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_NE(o->status.code, 0);
  EXPECT_NE(o->output.find("Read-only file system"), std::string::npos) << o->output;

  ContainerSpec rw = baseSpec({"sh", "-c", "touch /tmp/probe && echo wrote"});
  auto w = run(rw);
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(w->output, "wrote\n");
}

TEST_F(IsolationTest, MaskedAndReadonlyPaths) {
  auto o = run(baseSpec({"sh", "-c",
                         "wc -c < /proc/kcore; wc -c < /proc/keys; ls /sys/firmware | wc -l; "
                         "echo 1 > /proc/sys/kernel/panic_on_oops || echo procsys-ro"}));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_NE(o->output.find("procsys-ro"), std::string::npos) << o->output;
  std::istringstream in(o->output);
  int kcore = -1, keys = -1, firmware = -1;
  in >> kcore >> keys >> firmware;
  EXPECT_EQ(kcore, 0) << o->output;
  EXPECT_EQ(keys, 0) << o->output;
  EXPECT_EQ(firmware, 0) << o->output;
}

TEST_F(IsolationTest, CapEffIsTheDefaultSet) {
  auto o = run(baseSpec({"grep", "-E", "^Cap(Eff|Bnd|Amb)", "/proc/self/status"}));
  ASSERT_TRUE(o) << o.error().message();
  // Docker's and containerd's default set.
  EXPECT_NE(o->output.find("CapEff:\t00000000a80425fb"), std::string::npos) << o->output;
  EXPECT_NE(o->output.find("CapBnd:\t00000000a80425fb"), std::string::npos) << o->output;
  EXPECT_NE(o->output.find("CapAmb:\t0000000000000000"), std::string::npos) << o->output;
}

TEST_F(IsolationTest, UserAndGroupsAreApplied) {
  ContainerSpec s = baseSpec({"id"});
  s.uid = 1000;
  s.gid = 1000;
  s.additional_gids = {1000, 2000};  // as OCI: exactly what setgroups gets
  s.capabilities.effective.clear();
  s.capabilities.permitted.clear();
  auto o = run(s);
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->output, "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n");
}

TEST_F(IsolationTest, DefaultSeccompBlocksWhatDockerBlocks) {
  for (const char* call : {"unshare", "mount", "keyctl"}) {
    auto o = run(baseSpec({"kt-syscall", call}));
    ASSERT_TRUE(o) << o.error().message();
    EXPECT_EQ(o->status.code, 1) << o->output;
    EXPECT_NE(o->output.find("errno=1"), std::string::npos) << call << ": " << o->output;
  }
  // clone3 answers ENOSYS only because of the profile (libc then falls back to clone).
  auto c3 = run(baseSpec({"kt-syscall", "clone3"}));
  ASSERT_TRUE(c3);
  EXPECT_NE(c3->output.find("errno=38"), std::string::npos) << c3->output;
  // Ordinary programs work.
  auto ok = run(baseSpec({"sh", "-c", "echo hi | grep hi && ls / > /dev/null"}));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status.code, 0) << ok->output;
}

TEST_F(IsolationTest, UnconfinedAllowsWhatTheProfileBlocks) {
  ContainerSpec s = baseSpec({"kt-syscall", "clone3"});
  s.seccomp.kind = SeccompProfile::Kind::kUnconfined;
  auto o = run(s);
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->output, "clone3: ok\n");
}

TEST_F(IsolationTest, EachContainerHasItsOwnSessionKeyring) {
  // A key in this (the node's) session keyring is not the containers' to find.
  std::string host_key = "kernelet-host-" + std::to_string(::getpid());
  long key =
      ::syscall(SYS_add_key, "user", host_key.c_str(), "secret", 6, KEY_SPEC_SESSION_KEYRING);
  ASSERT_GE(key, 0) << std::strerror(errno);
  ContainerSpec find = baseSpec({"kt-syscall", "findkey", host_key});
  find.seccomp.kind = SeccompProfile::Kind::kUnconfined;  // RuntimeDefault denies keyctl
  auto o = run(find);
  ::syscall(SYS_keyctl, KEYCTL_INVALIDATE, key);
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->output, "findkey: Required key not available errno=126\n");

  // Nor does a container find what another one (running) put in its own.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ContainerSpec first = baseSpec({"sh", "-c", "kt-syscall addkey planted && exec kt-sleep"});
  first.seccomp.kind = SeccompProfile::Kind::kUnconfined;
  first.stdout_fd = p[1];
  auto a = start(first);
  ::close(p[1]);
  ASSERT_TRUE(a) << a.error().message();
  char line[32] = {};
  EXPECT_GT(::read(p[0], line, sizeof line - 1), 0);
  ::close(p[0]);
  EXPECT_STREQ(line, "addkey: ok\n");
  ContainerSpec second = baseSpec({"kt-syscall", "findkey", "planted"});
  second.seccomp.kind = SeccompProfile::Kind::kUnconfined;
  auto b = run(second);
  // Nor an exec into the first: it gets a keyring of its own too.
  auto e = run(execSpec(first, a->pid(), {"kt-syscall", "findkey", "planted"}));
  (void)a->signal(SIGKILL);
  (void)a->wait();
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->output, "findkey: Required key not available errno=126\n");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->output, "findkey: Required key not available errno=126\n");
}

TEST_F(IsolationTest, MissingBinaryIsAClearErrorAndLeavesNothing) {
  int fds = countFds();
  int mounts = countLines("/proc/self/mountinfo");
  auto o = run(baseSpec({"/bin/nope"}));
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error().message(), "exec `/bin/nope`: No such file or directory");
  auto p = run(baseSpec({"nope-in-path"}));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message(), "exec `nope-in-path`: No such file or directory");
  EXPECT_EQ(countFds(), fds);
  EXPECT_EQ(countLines("/proc/self/mountinfo"), mounts);
  EXPECT_EQ(countChildren(), 0);
}

TEST_F(IsolationTest, StdoutAndStderrGoToACriLog) {
  int out[2], err[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(err, O_CLOEXEC), 0);
  ContainerSpec s = baseSpec({"sh", "-c", "echo one; echo two >&2; printf tail"});
  s.stdout_fd = out[1];
  s.stderr_fd = err[1];
  auto proc = start(s);
  ::close(out[1]);
  ::close(err[1]);
  ASSERT_TRUE(proc) << proc.error().message();
  std::string path = "/tmp/kernelet-cri-" + std::to_string(::getpid()) + ".log";
  auto writer = CriLogWriter::open(path);
  ASSERT_TRUE(writer);
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  ASSERT_TRUE(writer->pump(*loop, UniqueFd(out[0]), UniqueFd(err[0])));
  ASSERT_TRUE(loop->run(std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  ASSERT_TRUE(proc->wait());
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) {
    lines.push_back(l.substr(l.find(' ') + 1));  // without the timestamp
  }
  ::unlink(path.c_str());
  std::sort(lines.begin(), lines.end());  // the two streams interleave freely
  EXPECT_EQ(lines, (std::vector<std::string>{"stderr F two", "stdout F one", "stdout F tail"}));
}

TEST_F(IsolationTest, ASecondContainerCanJoinThePidNamespaceOfTheFirst) {
  // shareProcessNamespace: the second container sees the first's processes.
  auto first = start(baseSpec({"kt-sleep"}));
  ASSERT_TRUE(first) << first.error().message();
  ContainerSpec second = baseSpec({"sh", "-c", "echo pid=$$; cat /proc/1/cmdline | tr '\\0' ' '"});
  for (auto& ns : second.namespaces) {
    if (ns.type == Namespace::kPid) {
      ns.path = "/proc/" + std::to_string(first->pid()) + "/ns/pid";
    }
  }
  auto o = run(second);
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_NE(o->output.find("pid="), std::string::npos);
  EXPECT_EQ(o->output.find("pid=1\n"), std::string::npos) << o->output;  // not the init
  EXPECT_NE(o->output.find("kt-sleep"), std::string::npos) << o->output;
  // This process is still in its own pid namespace afterwards.
  EXPECT_EQ(std::filesystem::read_symlink("/proc/self/ns/pid"),
            std::filesystem::read_symlink("/proc/thread-self/ns/pid_for_children"));
  ASSERT_TRUE(first->signal(SIGKILL));
  ASSERT_TRUE(first->wait());
}

// Runs `spec` in a forked copy of this process in which system call `nr`
// fails with `err` (a seccomp filter the container child inherits): the
// container's output, or the error start() returned, as text.
std::string runWithFailingSyscall(const ContainerSpec& spec, long nr, int err) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return "pipe2 failed";
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
#if defined(__x86_64__)
    constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#endif
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | static_cast<uint32_t>(err)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
    std::string out;
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
      out = "seccomp failed";
    } else {
      auto o = run(spec);
      out = o ? "exit " + std::to_string(o->status.code) + "\n" + o->output
              : "error: " + o.error().message();
    }
    (void)!::write(p[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(p[1]);
  std::string out = kernelet::testing::readAll(p[0]);
  ::waitpid(pid, nullptr, 0);
  return out;
}

// Where close_range does not exist (ENOSYS, before 5.9) the agent's
// descriptors are closed one by one: none reaches the container.
TEST_F(IsolationTest, WithoutCloseRangeNoDescriptorOfTheAgentLeaks) {
  int leaked = ::open("/dev/null", O_RDONLY);  // not O_CLOEXEC: only an explicit close stops it
  ASSERT_GE(leaked, 0);
  ASSERT_EQ(::dup2(leaked, 42), 42);
  ::close(leaked);
  std::string out =
      runWithFailingSyscall(baseSpec({"ls", "/proc/self/fd"}), SYS_close_range, ENOSYS);
  ::close(42);
  EXPECT_EQ(out, "exit 0\n0\n1\n2\n3\n") << "fd 42 of the agent reached the container";
  // Any other failure fails the start.
  out = runWithFailingSyscall(baseSpec({"true"}), SYS_close_range, EPERM);
  EXPECT_EQ(out, "error: close_range: Operation not permitted");
}

TEST_F(IsolationTest, AFailedStatfsOfAReadonlyRootFailsTheStart) {
  ContainerSpec ro = baseSpec({"true"});
  ro.readonly_rootfs = true;
  EXPECT_EQ(runWithFailingSyscall(ro, SYS_statfs, EIO), "error: statfs `/`: Input/output error");
}

// Written before pivot_root through the agent's /proc, the OOM score and the
// sysctls of net, ipc and uts still land in the container's process and
// namespaces, and not in the node's.
TEST_F(IsolationTest, OomScoreAndSysctlsAreTheContainers) {
  auto host = [](const char* path) {
    std::string v;
    std::getline(std::ifstream(path), v);
    return v;
  };
  std::string port = host("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  std::string shmmni = host("/proc/sys/kernel/shmmni");
  std::string domain = host("/proc/sys/kernel/domainname");
  ContainerSpec s =
      baseSpec({"cat", "/proc/self/oom_score_adj", "/proc/sys/net/ipv4/ip_unprivileged_port_start",
                "/proc/sys/kernel/shmmni", "/proc/sys/kernel/domainname"});
  s.oom_score_adj = 617;
  s.sysctls = {{"net.ipv4.ip_unprivileged_port_start", "80"},
               {"kernel.shmmni", "1234"},
               {"kernel.domainname", "kernelet.test"}};
  auto o = run(s);
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->output, "617\n80\n1234\nkernelet.test\n");
  EXPECT_EQ(host("/proc/sys/net/ipv4/ip_unprivileged_port_start"), port);
  EXPECT_EQ(host("/proc/sys/kernel/shmmni"), shmmni);
  EXPECT_EQ(host("/proc/sys/kernel/domainname"), domain);
  EXPECT_NE(host("/proc/self/oom_score_adj"), "617");
}

// A volume at /proc/self (which is /proc/1 there) would take the writes meant
// for the container's /proc/self/oom_score_adj and more: only what runc
// allows goes under /proc.
TEST_F(IsolationTest, MountsUnderProcAreRefusedButLxcfsFiles) {
  kernelet::testing::TempDir dir;
  std::string fake = dir.write("meminfo", "MemTotal: 42 kB\n");
  for (const char* dest : {"/proc/self", "//proc/./self/", "/proc/sys/kernel", "/proc/1"}) {
    ContainerSpec s = baseSpec({"true"});
    s.oom_score_adj = 500;
    s.mounts.push_back({dest, "bind", dir.path(), {"rbind"}});
    auto r = start(s);
    ASSERT_FALSE(r) << dest << " was mounted";
    EXPECT_NE(r.error().message().find("cannot be mounted because it is inside /proc"),
              std::string::npos)
        << r.error().message();
    if (r) {
      (void)r->wait();
    }
  }
  ContainerSpec tmpfs = baseSpec({"true"});
  tmpfs.mounts[0] = {"/proc", "tmpfs", "tmpfs", {}};
  auto t = start(tmpfs);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message(),
            "container spec `mounts[0].destination`: only a proc filesystem can be mounted at "
            "/proc");
  // lxcfs's files are fine.
  ContainerSpec lxcfs = baseSpec({"head", "-n1", "/proc/meminfo"});
  lxcfs.mounts.push_back({"/proc/meminfo", "bind", fake, {"bind", "ro"}});
  auto o = run(lxcfs);
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->output, "MemTotal: 42 kB\n");
}

// An image whose /proc is a symlink would get proc (and what is masked in it)
// somewhere else: refused as runc refuses it.
TEST_F(IsolationTest, AnImageWhoseProcIsASymlinkIsRefused) {
  kernelet::testing::TempDir dir;
  // Setup stops at the first mount, /proc: the image needs nothing else.
  std::string rootfs = dir.path() + "/rootfs";
  std::filesystem::create_directories(rootfs + "/fake/proc");
  std::filesystem::create_directory_symlink("/fake/proc", rootfs + "/proc");
  ContainerSpec s = baseSpec({"true"});
  s.rootfs = rootfs;
  auto r = run(s);
  ASSERT_FALSE(r) << "started with /proc a symlink";
  EXPECT_EQ(r.error().message(),
            "open mount point (a directory, no symlink) `/proc`: Too many levels of symbolic "
            "links");
}

// Bind mounts are built detached: read-only with their nosuid/nodev/noexec
// (which a MS_BIND mount(2) ignores) before they are attached, their
// propagation set on the attached mount.
TEST_F(IsolationTest, BindMountsGetTheirFlagsAndPropagation) {
  kernelet::testing::TempDir dir;
  dir.write("file", "x");
  ContainerSpec s =
      baseSpec({"sh", "-c", "grep -E ' /(ro|flags) ' /proc/self/mountinfo; touch /ro/new"});
  s.mounts.push_back({"/ro", "bind", dir.path(), {"rbind", "ro", "rshared"}});
  s.mounts.push_back({"/flags", "bind", dir.path(), {"bind", "nosuid", "nodev", "noexec"}});
  auto o = run(s);
  ASSERT_TRUE(o) << o.error().message();
  std::istringstream in(o->output);
  std::string ro, flags, touch;
  std::getline(in, ro);
  std::getline(in, flags);
  std::getline(in, touch);
  EXPECT_NE(ro.find(" /ro ro,"), std::string::npos) << o->output;
  EXPECT_NE(ro.find(" shared:"), std::string::npos) << o->output;
  EXPECT_NE(flags.find(" /flags rw,nosuid,nodev,noexec"), std::string::npos) << o->output;
  EXPECT_EQ(flags.find(" shared:"), std::string::npos) << o->output;
  EXPECT_NE(touch.find("Read-only file system"), std::string::npos) << o->output;
}

TEST_F(IsolationTest, BadSpecIsRefusedBeforeAnythingStarts) {
  ContainerSpec s = baseSpec({"true"});
  s.mounts.push_back({"relative/path", "tmpfs", "tmpfs", {}});
  auto r = start(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "container spec `mounts[7].destination`: must be an absolute path, got "
            "\"relative/path\"");
}

class CgroupContainerTest : public IsolationTest {
 protected:
  void SetUp() override {
    IsolationTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    auto h = cgroups::detect();
    ASSERT_TRUE(h);
    mount_ = h->mount;
    root_ = "kernelet-iso-" + std::to_string(::getpid());
    ASSERT_TRUE(cgroups::ensureQosTree(mount_, root_));
    std::string pod = cgroups::podCgroupPath(root_, cgroups::QosClass::kBurstable, "p");
    auto p = cgroups::Cgroup::create(mount_, pod);
    ASSERT_TRUE(p);
    ASSERT_TRUE(p->enableControllers({"cpu", "memory", "pids"}));
    auto g = cgroups::Cgroup::create(mount_, pod + "/c");
    ASSERT_TRUE(g);
    group_ = std::move(*g);
  }
  void TearDown() override {
    if (!root_.empty()) {
      auto top = cgroups::Cgroup::open(mount_, root_);
      ASSERT_TRUE(top);
      auto r = top->remove();
      EXPECT_TRUE(r) << r.error().message();
    }
  }
  // Starts in the group and waits through an event loop, as the agent does.
  Result<ContainerExit> runInGroup(std::vector<std::string> argv) {
    ContainerSpec s = baseSpec(std::move(argv));
    s.cgroup_fd = group_.fd();
    int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    s.stdout_fd = s.stderr_fd = devnull;
    auto proc = start(s);
    ::close(devnull);
    if (!proc) {
      return std::unexpected(proc.error());
    }
    TRY(EventLoop loop, EventLoop::create());
    std::optional<Result<ContainerExit>> result;
    TRY_VOID(watchExit(loop, *proc, &group_, [&](Result<ContainerExit> r) { result = r; }));
    TRY_VOID(loop.run(std::chrono::steady_clock::now() + std::chrono::seconds(60)));
    if (!result) {
      return makeError("wait", "", "container did not exit in 60 s");
    }
    return *result;
  }
  std::string mount_, root_;
  cgroups::Cgroup group_;
};

TEST_F(CgroupContainerTest, MemoryLimitExceededIsOomKilled) {
  ASSERT_TRUE(group_.apply({.memory_max = 16 << 20, .memory_oom_group = true}));
  auto e = runInGroup({"kt-alloc", "64"});
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->status.signal, SIGKILL);
  EXPECT_TRUE(e->oom_killed);
  EXPECT_EQ(e->reason(), "OOMKilled");
}

TEST_F(CgroupContainerTest, ExitCodesAndReasons) {
  auto ok = runInGroup({"kt-exit", "0"});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->reason(), "Completed");
  auto bad = runInGroup({"kt-exit", "3"});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status.code, 3);
  EXPECT_EQ(bad->reason(), "Error");
}

TEST_F(CgroupContainerTest, CpuMaxThrottlesASpinningContainer) {
  ASSERT_TRUE(group_.apply({.cpu_max = cgroups::CpuMax{cgroups::milliCpuToQuota(100), 100000}}));
  auto e = runInGroup({"kt-spin", "1"});
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->status.code, 0);
  EXPECT_GT(group_.stats()->cpu_nr_throttled, 0u);
}

TEST_F(CgroupContainerTest, PidsMaxMakesForkFail) {
  ASSERT_TRUE(group_.apply({.pids_max = 5}));
  auto e = runInGroup({"kt-fork", "20"});
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->status.code, 1);  // kt-fork: not all forks succeeded
}

TEST_F(CgroupContainerTest, HundredContainersLeakNothing) {
  int fds = countFds();
  int mounts = countLines("/proc/self/mountinfo");
  std::string pod = cgroups::podCgroupPath(root_, cgroups::QosClass::kBurstable, "p");
  for (int i = 0; i < 100; i++) {
    // A group per container, as the agent makes them, removed after each.
    auto g = cgroups::Cgroup::create(mount_, pod + "/run" + std::to_string(i));
    ASSERT_TRUE(g);
    std::swap(group_, *g);
    auto e = runInGroup({"true"});
    std::swap(group_, *g);
    ASSERT_TRUE(e) << "container " << i << ": " << e.error().message();
    ASSERT_EQ(e->status.code, 0);
    auto removed = g->remove();
    ASSERT_TRUE(removed) << removed.error().message();
  }
  EXPECT_EQ(countFds(), fds);
  EXPECT_EQ(countLines("/proc/self/mountinfo"), mounts);
  EXPECT_EQ(countChildren(), 0);
  // Only the fixture's own container group is left in the pod.
  int groups = 0;
  for (const auto& e : std::filesystem::directory_iterator(mount_ + "/" + pod)) {
    groups += e.is_directory();
  }
  EXPECT_EQ(groups, 1);
}

// A child that never gets through setup: born into a frozen cgroup, it stays
// where clone3 left it, as one stuck in a mount or a lock would.
class StuckChildTest : public CgroupContainerTest {
 protected:
  void SetUp() override {
    CgroupContainerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    ASSERT_TRUE(group_.write("cgroup.freeze", "1"));
  }
  // Starts in the frozen group on a thread; the caller acts on the child.
  std::future<Result<Process>> startFrozen(std::chrono::milliseconds timeout) {
    ContainerSpec s = baseSpec({"true"});
    s.cgroup_fd = group_.fd();
    s.setup_timeout = timeout;
    return std::async(std::launch::async, [s] { return start(s); });
  }
  pid_t childPid() {
    for (int i = 0; i < 500; i++) {
      auto procs = group_.processes();
      if (procs && !procs->empty()) {
        return procs->front();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  // Bounded, so that a start() which never returns fails the test instead of
  // hanging it: the group is killed, which ends any wait on the child.
  Result<Process> finish(std::future<Result<Process>>& f, std::chrono::seconds limit) {
    if (f.wait_for(limit) != std::future_status::ready) {
      ADD_FAILURE() << "start() did not return within " << limit.count() << " s";
      (void)group_.write("cgroup.kill", "1");
    }
    return f.get();
  }
};

TEST_F(StuckChildTest, AChildKilledDuringSetupIsAFailedStart) {
  auto f = startFrozen(std::chrono::seconds(60));
  pid_t pid = childPid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  auto r = finish(f, std::chrono::seconds(30));
  ASSERT_FALSE(r) << "a child killed before exec was reported as started";
  EXPECT_EQ(r.error().message(), std::string("start container `") + KERNELET_FIXTURE_ROOTFS +
                                     "`: the child died during setup, before exec: killed by "
                                     "signal 9 (SIGKILL)");
  EXPECT_EQ(countChildren(), 0);
}

TEST_F(StuckChildTest, AChildStuckInSetupIsKilledAtTheDeadline) {
  auto begin = std::chrono::steady_clock::now();
  auto f = startFrozen(std::chrono::milliseconds(1500));
  auto r = finish(f, std::chrono::seconds(30));
  auto took = std::chrono::steady_clock::now() - begin;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), std::string("start container `") + KERNELET_FIXTURE_ROOTFS +
                                     "`: setup timed out after 1.5 s, before exec of `true`; "
                                     "the child was killed");
  EXPECT_GE(took, std::chrono::milliseconds(1500));
  EXPECT_LT(took, std::chrono::seconds(20));
  EXPECT_EQ(countChildren(), 0);
  EXPECT_TRUE(group_.processes()->empty());
}

}  // namespace
}  // namespace kernelet::isolation
