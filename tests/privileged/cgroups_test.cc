// cgroups/ against the real cgroup v2 of the test VM: limits the kernel
// enforces, stats, events, removal.
#include "cgroups/cgroups.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "support/privileged.h"
#include "support/process_util.h"
#include "support/temp_dir.h"
#include "sys/fileio.h"

namespace kernelet::cgroups {
namespace {

// Forks a helper program from the fixtures into `group` (via cgroup.procs
// before exec), with stdout to /dev/null.
pid_t spawnIn(Cgroup& group, std::vector<std::string> argv) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    return -1;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    char go;
    (void)::read(ready[0], &go, 1);
    std::vector<char*> args = kernelet::testing::argvOf(argv);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(ready[0]);
  EXPECT_TRUE(group.addProcess(pid));
  (void)::write(ready[1], "g", 1);
  ::close(ready[1]);
  return pid;
}

std::string helper(const char* name) { return std::string(KERNELET_HELPERS_DIR) + "/" + name; }

class CgroupsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    auto h = detect();
    ASSERT_TRUE(h) << h.error().message();
    mount_ = h->mount;
    ASSERT_TRUE(requireControllers(*h)) << requireControllers(*h).error().message();
    root_ = "kernelet-test-" + std::to_string(::getpid());
    ASSERT_TRUE(ensureQosTree(mount_, root_));
    // A pod group delegates the controllers to its container groups.
    auto pod = Cgroup::create(mount_, podCgroupPath(root_, QosClass::kBurstable, "u1"));
    ASSERT_TRUE(pod) << pod.error().message();
    ASSERT_TRUE(pod->enableControllers({"cpu", "memory", "pids"}));
    auto g = Cgroup::create(mount_, podCgroupPath(root_, QosClass::kBurstable, "u1") + "/c");
    ASSERT_TRUE(g) << g.error().message();
    group_ = std::move(*g);
  }
  void TearDown() override {
    if (!root_.empty()) {
      auto top = Cgroup::open(mount_, root_);
      if (top) {
        auto r = top->remove();
        EXPECT_TRUE(r) << r.error().message();
      }
    }
  }
  std::string mount_;
  std::string root_;
  Cgroup group_;
};

TEST_F(CgroupsTest, QosTreeDelegatesControllers) {
  auto pod = Cgroup::open(mount_, podCgroupPath(root_, QosClass::kBurstable, "u1"));
  ASSERT_TRUE(pod);
  std::string ctl = pod->read("cgroup.controllers").value();
  for (const char* c : {"cpu", "memory", "pids"}) {
    EXPECT_NE(ctl.find(c), std::string::npos) << ctl;
  }
}

TEST_F(CgroupsTest, LimitsAreWrittenAndUpdatedInPlace) {
  Cgroup* leaf = &group_;
  Limits l{.cpu_weight = sharesToWeight(milliCpuToShares(250)),
           .cpu_max = CpuMax{milliCpuToQuota(500), 100000},
           .memory_max = 64 << 20,
           .pids_max = 32,
           .memory_oom_group = true};
  auto r = leaf->apply(l);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(leaf->read("cpu.max").value(), "50000 100000\n");
  EXPECT_EQ(leaf->read("memory.max").value(), "67108864\n");
  EXPECT_EQ(leaf->read("pids.max").value(), "32\n");
  EXPECT_EQ(leaf->read("memory.oom.group").value(), "1\n");
  EXPECT_EQ(leaf->read("cpu.weight").value(), std::to_string(sharesToWeight(256)) + "\n");
  // In place: only the fields given change.
  ASSERT_TRUE(leaf->apply(Limits{.cpu_max = CpuMax{-1, 100000}, .memory_max = -1}));
  EXPECT_EQ(leaf->read("cpu.max").value(), "max 100000\n");
  EXPECT_EQ(leaf->read("memory.max").value(), "max\n");
  EXPECT_EQ(leaf->read("pids.max").value(), "32\n");
}

TEST_F(CgroupsTest, OomKillIsSeenAsAnEvent) {
  ASSERT_TRUE(group_.apply(Limits{.memory_max = 16 << 20, .memory_oom_group = true}));
  auto w = EventWatcher::watch(group_);
  ASSERT_TRUE(w) << w.error().message();
  pid_t pid = spawnIn(group_, {helper("kt-alloc"), "64"});
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "kt-alloc was not killed, status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  pollfd p{.fd = w->fd(), .events = POLLIN};
  ASSERT_EQ(::poll(&p, 1, 5000), 1) << "no inotify event after the OOM kill";
  auto c = w->check();
  ASSERT_TRUE(c);
  EXPECT_GE(c->new_oom_kills, 1u);
  EXPECT_GE(group_.stats()->memory_oom_kill, 1u);
}

TEST_F(CgroupsTest, EmptyGroupIsSeenAsAnEvent) {
  pid_t pid = spawnIn(group_, {helper("kt-sleep"), "1"});
  auto w = EventWatcher::watch(group_);
  ASSERT_TRUE(w);
  ::waitpid(pid, nullptr, 0);
  bool empty = false;
  for (int i = 0; i < 50 && !empty; i++) {
    pollfd p{.fd = w->fd(), .events = POLLIN};
    ::poll(&p, 1, 100);
    empty = w->check()->became_empty;
  }
  EXPECT_TRUE(empty);
}

TEST_F(CgroupsTest, CpuMaxThrottlesASpinner) {
  ASSERT_TRUE(group_.apply(Limits{.cpu_max = CpuMax{milliCpuToQuota(100), 100000}}));
  pid_t pid = spawnIn(group_, {helper("kt-spin"), "1.5"});
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  Stats s = group_.stats().value();
  EXPECT_GT(s.cpu_nr_throttled, 0u) << "periods " << s.cpu_nr_periods;
  EXPECT_GT(s.cpu_throttled_usec, 0u);
}

TEST_F(CgroupsTest, PidsMaxMakesForkFail) {
  ASSERT_TRUE(group_.apply(Limits{.pids_max = 4}));
  pid_t pid = spawnIn(group_, {helper("kt-fork"), "10"});
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << "kt-fork forked all 10 under pids.max 4";
}

TEST_F(CgroupsTest, DeviceRulesAreEnforcedAndReplaceable) {
  // Deny everything, then allow /dev/null only: the last matching rule decides.
  std::vector<DeviceRule> rules = {{false, 'a', -1, -1, "rwm"}, {true, 'c', 1, 3, "rw"}};
  auto r = group_.applyDeviceRules(rules);
  ASSERT_TRUE(r) << r.error().message();
  auto run = [&](const char* script) {
    pid_t pid = spawnIn(group_, {"/bin/busybox", "sh", "-c", script});
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(run("echo x > /dev/null"), 0);
  EXPECT_NE(run("head -c1 /dev/zero > /dev/null"), 0);
  EXPECT_NE(run("echo x > /dev/full 2>/dev/null; test -r /dev/zero && head -c1 /dev/zero"), 0);
  // The defaults replace the previous program: /dev/zero opens again.
  rules = {{false, 'a', -1, -1, "rwm"}};
  for (auto& d : defaultAllowedDevices()) {
    rules.push_back(d);
  }
  ASSERT_TRUE(group_.applyDeviceRules(rules));
  EXPECT_EQ(run("head -c1 /dev/zero > /dev/null"), 0);
  // A bad rule is an error before anything is attached.
  auto bad = group_.applyDeviceRules({{true, 'x', -1, -1, "rwm"}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "device rule `x`: type must be a, c or b");
}

// Rules that grant part of the access each branch the verifier walks: sixteen
// of them overflowed the 4 KiB verifier log the program was loaded with (ENOSPC
// on 6.1), as a device plugin's list of GPU nodes would.
TEST_F(CgroupsTest, ManyPartialDeviceRulesLoadAndHold) {
  std::vector<DeviceRule> rules = {{true, 'c', 1, 3, "rw"}, {true, 'c', 1, 5, "r"}};
  for (int minor = 0; minor < 14; minor++) {
    rules.push_back({true, 'c', 195, minor, "rw"});
  }
  auto r = group_.applyDeviceRules(rules);
  ASSERT_TRUE(r) << r.error().message();
  auto run = [&](const char* script) {
    pid_t pid = spawnIn(group_, {"/bin/busybox", "sh", "-c", script});
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(run("echo x > /dev/null"), 0);
  EXPECT_EQ(run("head -c1 /dev/zero > /dev/null"), 0);
  EXPECT_NE(run("echo x > /dev/zero"), 0);  // read only
  EXPECT_NE(run("head -c1 /dev/urandom > /dev/null"), 0);
}

// What a shell in `group` says when it opens `node` for reading and writing:
// "" when it opened.
std::string openError(Cgroup& group, const std::string& dir, const std::string& node) {
  std::string err = dir + "/err";
  std::string script = "(exec 3<>" + node + ") 2>" + err;
  pid_t pid = spawnIn(group, {"/bin/busybox", "sh", "-c", script});
  int status = 0;
  ::waitpid(pid, &status, 0);
  return readFile(err).value_or("(no stderr file)");
}

// The defaults are eleven rules: the program for them must load (6.1 refused
// it with ENOSPC when loaded with a 4 KiB verifier log) and must let only the
// standard devices open, whatever node a process makes for the others.
TEST_F(CgroupsTest, DefaultDeviceRulesLoadAndOpenOnlyTheStandardDevices) {
  auto r = group_.applyDeviceRules(defaultAllowedDevices());
  ASSERT_TRUE(r) << r.error().message();
  kernelet::testing::TempDir dir;
  auto node = [&](const char* name, char type, int major, int minor) {
    std::string path = dir.path() + "/" + name;
    std::string script = std::string("mknod ") + path + " " + type + " " + std::to_string(major) +
                         " " + std::to_string(minor);
    pid_t pid = spawnIn(group_, {"/bin/busybox", "sh", "-c", script});
    int status = 0;
    ::waitpid(pid, &status, 0);
    // mknod itself is allowed for every device, as runc allows it.
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "mknod " << path;
    return path;
  };
  const std::string eperm = "Operation not permitted";
  for (const char* ok : {"/dev/null", "/dev/zero", "/dev/full", "/dev/urandom", "/dev/random"}) {
    EXPECT_EQ(openError(group_, dir.path(), ok), "") << ok;
  }
  EXPECT_NE(openError(group_, dir.path(), node("ram0", 'b', 1, 0)).find(eperm), std::string::npos);
  EXPECT_NE(openError(group_, dir.path(), node("sda", 'b', 8, 0)).find(eperm), std::string::npos);
  EXPECT_NE(openError(group_, dir.path(), node("kmsg", 'c', 1, 11)).find(eperm), std::string::npos);
  EXPECT_NE(openError(group_, dir.path(), node("mem", 'c', 1, 1)).find(eperm), std::string::npos);
  // The node's console is not (runc dropped it), /dev/net/tun is (the driver
  // may still refuse, but not the device cgroup).
  EXPECT_NE(openError(group_, dir.path(), node("console", 'c', 5, 1)).find(eperm),
            std::string::npos);
  EXPECT_EQ(openError(group_, dir.path(), node("tun", 'c', 10, 200)).find(eperm),
            std::string::npos);
}

TEST_F(CgroupsTest, RemoveKillsEverythingInside) {
  pid_t a = spawnIn(group_, {helper("kt-sleep")});
  pid_t b = spawnIn(group_, {helper("kt-sleep")});
  EXPECT_EQ(group_.processes()->size(), 2u);
  std::string path = group_.path();
  auto r = group_.remove();
  ASSERT_TRUE(r) << r.error().message();
  int status = 0;
  ASSERT_EQ(::waitpid(a, &status, 0), a);
  EXPECT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(::waitpid(b, &status, 0), b);
  EXPECT_EQ(::access(path.c_str(), F_OK), -1);
}

}  // namespace
}  // namespace kernelet::cgroups
