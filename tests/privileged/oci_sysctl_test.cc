// Sysctls in config.json: only namespaced ones, in the container's own
// namespaces; a host-wide one is refused and the host keeps its value.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/privileged.h"

namespace {

namespace fs = std::filesystem;

struct Ran {
  int status = -1;
  std::string out, err;
};

Ran kernelet(const std::vector<std::string>& args) {
  char out_tmpl[] = "/tmp/kernelet-out.XXXXXX";
  char err_tmpl[] = "/tmp/kernelet-err.XXXXXX";
  int out = ::mkstemp(out_tmpl);
  int err = ::mkstemp(err_tmpl);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> argv = {const_cast<char*>(KERNELET_BINARY)};
    for (const auto& a : args) {
      argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
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

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class OciSysctl : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    char tmpl[] = "/tmp/kernelet-oci-sysctl.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    bundle_ = dir_ + "/bundle";
    fs::create_directories(bundle_);
    fs::create_directory_symlink(KERNELET_FIXTURE_ROOTFS, bundle_ + "/rootfs");
  }
  void TearDown() override {
    if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }
  // A container that prints the sysctl file `proc_path` with `sysctl` set to "1".
  Ran run(const std::string& sysctl, const std::string& value, const std::string& proc_path) {
    std::ofstream(bundle_ + "/config.json") << R"({
      "ociVersion": "1.0.2",
      "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["cat", ")" +
                                                   proc_path + R"("],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": "/", "noNewPrivileges": true},
      "root": {"path": "rootfs", "readonly": true},
      "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
      "linux": {"sysctl": {")" + sysctl + R"(": ")" +
                                                   value + R"("},
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}
    })";
    return kernelet({"oci", "--root", dir_ + "/state", "run", "--bundle", bundle_, "sysctl-test"});
  }
  std::string dir_, bundle_;
};

TEST_F(OciSysctl, CorePatternIsRefusedAndTheHostKeepsItsValue) {
  std::string before = readFile("/proc/sys/kernel/core_pattern");
  Ran r = run("kernel.core_pattern", "|/tmp/evil %p", "/proc/sys/kernel/core_pattern");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("linux.sysctl.kernel.core_pattern: not a namespaced sysctl"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(readFile("/proc/sys/kernel/core_pattern"), before);
}

TEST_F(OciSysctl, NetSysctlIsSetInThePrivateNetworkNamespaceOnly) {
  std::string before = readFile("/proc/sys/net/ipv4/ip_forward");
  std::string want = before == "1\n" ? "0" : "1";
  Ran r = run("net.ipv4.ip_forward", want, "/proc/sys/net/ipv4/ip_forward");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, want + "\n");
  EXPECT_EQ(readFile("/proc/sys/net/ipv4/ip_forward"), before);
}

}  // namespace
