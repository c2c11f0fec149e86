#include <gtest/gtest.h>

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

}  // namespace
}  // namespace kernelet::isolation
