#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <rapidjson/document.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>

#include "isolation/container_spec.h"
#include "isolation/seccomp.h"

namespace kernelet::isolation {
namespace {

SeccompProfile json(const std::string& text) {
  return {.kind = SeccompProfile::Kind::kJson, .json = text, .origin = "/etc/profile.json"};
}

TEST(Seccomp, RuntimeDefaultCompiles) {
  auto p = compileSeccomp({}, defaultCapabilities());
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_GT(p->filter.size(), 100u);
  // With CAP_SYS_ADMIN the mount/unshare rules join: a different program.
  auto caps = defaultCapabilities();
  caps.push_back("CAP_SYS_ADMIN");
  auto admin = compileSeccomp({}, caps);
  ASSERT_TRUE(admin);
  EXPECT_NE(admin->filter.size(), p->filter.size());
}

TEST(Seccomp, UnconfinedIsNoFilter) {
  auto p = compileSeccomp({.kind = SeccompProfile::Kind::kUnconfined}, {});
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->filter.empty());
}

TEST(Seccomp, OciProfileWithArgs) {
  auto p =
      compileSeccomp(json(R"({"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
    "syscalls":[{"names":["keyctl","add_key"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]})"),
                     {});
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_FALSE(p->filter.empty());
}

TEST(Seccomp, ErrorsNameTheFileAndField) {
  auto bad_action = compileSeccomp(
      json(
          R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOPE"}]})"),
      {});
  ASSERT_FALSE(bad_action);
  EXPECT_EQ(bad_action.error().message(),
            "seccomp profile `/etc/profile.json`: syscalls[0].action: unsupported action "
            "\"SCMP_ACT_NOPE\"");

  auto unknown =
      compileSeccomp(json(R"({"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x"})"), {});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find("listenerPath: unknown or unsupported field"),
            std::string::npos)
      << unknown.error().message();

  auto broken = compileSeccomp(json("{\"defaultAction\": "), {});
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message().find("/etc/profile.json"), std::string::npos);

  auto op = compileSeccomp(json(R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
      "action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ALMOST"}]}]})"),
                           {});
  ASSERT_FALSE(op);
  EXPECT_NE(op.error().message().find("syscalls[0].args[0].op"), std::string::npos);
}

TEST(Seccomp, ProfileFieldsOfTheWrongTypeAreErrorsNamingThePath) {
  struct Case {
    const char* profile;
    const char* message;
  };
  const Case cases[] = {
      {R"({"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":"x"})",
       "defaultErrnoRet: must be an integer"},
      {R"({"defaultAction":7})", "defaultAction: must be a string"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[1]})", "syscalls[0]: must be an object"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":1}]})",
       "syscalls[0].action: must be a string"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
          "action":"SCMP_ACT_ERRNO","errnoRet":[]}]})",
       "syscalls[0].errnoRet: must be an integer"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
          "action":"SCMP_ACT_ERRNO","args":[{"index":"0","op":"SCMP_CMP_EQ"}]}]})",
       "syscalls[0].args[0].index: must be an integer"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
          "action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":-1,"op":"SCMP_CMP_EQ"}]}]})",
       "syscalls[0].args[0].value: must not be negative"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
          "action":"SCMP_ACT_ERRNO","includes":[]}]})",
       "syscalls[0].includes: must be an object"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":1}]})",
       "archMap[0].architecture: must be a string"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","architectures":"SCMP_ARCH_X86"})",
       "architectures: must be an array"},
  };
  for (const Case& c : cases) {
    auto p = compileSeccomp(json(c.profile), {});
    ASSERT_FALSE(p) << c.profile;
    EXPECT_EQ(p.error().message(),
              std::string("seccomp profile `/etc/profile.json`: ") + c.message);
  }
  std::string deep = R"({"defaultAction":"SCMP_ACT_ALLOW","comment":)" + std::string(100000, '[') +
                     std::string(100000, ']') + "}";
  auto p = compileSeccomp(json(deep), {});
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("nested deeper than"), std::string::npos);
}

// kernelet's RuntimeDefault as containerd's list writes it (see the data file):
// one line per rule and syscall, for an amd64 container.
std::set<std::string> runtimeDefaultRules() {
  rapidjson::Document d;
  d.Parse(runtimeDefaultSeccompJson().c_str());
  EXPECT_FALSE(d.HasParseError());
  std::set<std::string> out;
  for (const auto& rule : d["syscalls"].GetArray()) {
    std::string action = rule["action"].GetString();
    std::string line =
        action == "SCMP_ACT_ALLOW" ? "allow" : "errno=" + std::to_string(rule["errnoRet"].GetInt());
    if (rule.HasMember("args")) {
      for (const auto& a : rule["args"].GetArray()) {
        static const std::map<std::string, std::string> ops = {
            {"SCMP_CMP_EQ", "=="}, {"SCMP_CMP_LT", "<"},  {"SCMP_CMP_GT", ">"},
            {"SCMP_CMP_NE", "!="}, {"SCMP_CMP_LE", "<="}, {"SCMP_CMP_GE", ">="}};
        char value[32];
        std::snprintf(value, sizeof value, "0x%lx",
                      static_cast<unsigned long>(a["value"].GetUint64()));
        std::string op = a["op"].GetString();
        std::string arg = "arg" + std::to_string(a["index"].GetUint());
        line += " " + (op == "SCMP_CMP_MASKED_EQ" ? arg + "&" + value + "==0x0"
                                                  : arg + ops.at(op) + value);
      }
    }
    if (rule.HasMember("includes")) {
      const auto& inc = rule["includes"];
      if (inc.HasMember("arches")) {
        bool amd64 = false;
        for (const auto& a : inc["arches"].GetArray()) {
          amd64 = amd64 || std::string(a.GetString()) == "amd64";
        }
        if (!amd64) {
          continue;
        }
      }
      if (inc.HasMember("minKernel")) {
        line += std::string(" kernel>=") + inc["minKernel"].GetString();
      }
      if (inc.HasMember("caps")) {
        for (const auto& c : inc["caps"].GetArray()) {
          line += std::string(" cap=") + c.GetString();
        }
      }
    }
    if (rule.HasMember("excludes")) {
      for (const auto& c : rule["excludes"]["caps"].GetArray()) {
        line += std::string(" nocap=") + c.GetString();
      }
    }
    for (const auto& n : rule["names"].GetArray()) {
      out.insert(line + " " + n.GetString());
    }
  }
  return out;
}

TEST(Seccomp, RuntimeDefaultIsContainerdsProfile) {
  std::ifstream in(KERNELET_TEST_DATA "/containerd_seccomp_allow.txt");
  ASSERT_TRUE(in) << KERNELET_TEST_DATA;
  std::set<std::string> containerd;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#') {
      containerd.insert(line);
    }
  }
  std::set<std::string> ours = runtimeDefaultRules();
  for (const std::string& r : ours) {
    EXPECT_TRUE(containerd.contains(r)) << "kernelet allows more than containerd: " << r;
  }
  for (const std::string& r : containerd) {
    EXPECT_TRUE(ours.contains(r)) << "kernelet lacks containerd's rule: " << r;
  }
  // The 2023 removal, and the namespace gates, spelled out.
  for (const char* name : {"io_uring_setup", "io_uring_enter", "io_uring_register"}) {
    for (const std::string& r : ours) {
      EXPECT_FALSE(r.ends_with(std::string(" ") + name)) << r;
    }
  }
  EXPECT_TRUE(ours.contains("allow cap=CAP_SYS_ADMIN unshare"));
  EXPECT_FALSE(ours.contains("allow unshare"));
  EXPECT_TRUE(ours.contains("allow arg0&0x7e020000==0x0 nocap=CAP_SYS_ADMIN clone"));
  EXPECT_FALSE(ours.contains("allow clone"));
}

// Runs `probe` in a child under the RuntimeDefault filter for `caps`; the
// child's exit status is the probe's result.
int underRuntimeDefault(const std::vector<std::string>& caps, int (*probe)()) {
  auto p = compileSeccomp({}, caps);
  EXPECT_TRUE(p) << p.error().message();
  pid_t pid = ::fork();
  if (pid == 0) {
    sock_fprog prog{static_cast<unsigned short>(p->filter.size()), p->filter.data()};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
      ::_exit(100);
    }
    ::_exit(probe());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

// 0 when the call was refused with EPERM (the profile's errno), 1 otherwise.
int refusedWithEperm(long rc) { return rc == -1 && errno == EPERM ? 0 : 1; }

TEST(Seccomp, RuntimeDefaultRefusesIoUringAfAlgAndNewNamespaces) {
  // Without a filter io_uring_setup(0, NULL) fails with EINVAL or EFAULT (or
  // ENOSYS on a kernel without it): never EPERM, so EPERM below is the filter's.
  errno = 0;
  long bare = ::syscall(__NR_io_uring_setup, 0, nullptr);
  ASSERT_TRUE(bare == -1 && errno != EPERM) << "io_uring_setup is refused here already";
  auto caps = defaultCapabilities();
  EXPECT_EQ(underRuntimeDefault(
                caps, [] { return refusedWithEperm(::syscall(__NR_io_uring_setup, 0, nullptr)); }),
            0);
  EXPECT_EQ(
      underRuntimeDefault(
          caps, [] { return refusedWithEperm(::syscall(__NR_io_uring_enter, 0, 0, 0, 0, 0)); }),
      0);
  EXPECT_EQ(underRuntimeDefault(caps, [] { return refusedWithEperm(::unshare(CLONE_NEWUSER)); }),
            0);
  EXPECT_EQ(underRuntimeDefault(caps,
                                [] {
                                  return refusedWithEperm(
                                      ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
                                }),
            0);
  EXPECT_EQ(underRuntimeDefault(
                caps, [] { return refusedWithEperm(::socket(AF_ALG, SOCK_SEQPACKET, 0)); }),
            0);
  // What containers need still works.
  EXPECT_EQ(underRuntimeDefault(caps,
                                [] {
                                  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
                                  return fd >= 0 && ::getpid() > 0 ? 0 : 1;
                                }),
            0);
}

}  // namespace
}  // namespace kernelet::isolation
