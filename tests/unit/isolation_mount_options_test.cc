// How a bind's options become the child's mount steps: "ro" makes the mount
// itself read-only, "rro" (runc's recursive read-only) its submounts too; a
// mount marked source_fd_only (a subPath the agent resolved) is refused when
// it comes without its fd, so its path is never bound. What the kernel does
// with them is agent_runtime_fields_test in the VM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <string>

#include "isolation/child_plan.h"
#include "support/temp_dir.h"
#include "sys/unique_fd.h"

namespace kernelet::isolation {
namespace {

using testing::TempDir;

ContainerSpec specWith(const TempDir& dir, Mount m) {
  ContainerSpec s;
  s.argv = {"sh"};
  s.rootfs = dir.path();
  s.namespaces = {{Namespace::kMount, ""}};
  s.mounts = {std::move(m)};
  return s;
}

TEST(MountOptions, RoIsTheMountRroEverySubmount) {
  TempDir dir;
  auto ro = buildPlan(specWith(dir, {"/data", "bind", dir.path(), {"rbind", "rprivate", "ro"}}));
  ASSERT_TRUE(ro) << ro.error().message();
  ASSERT_EQ(ro->mounts.size(), 1u);
  EXPECT_TRUE(ro->mounts[0].readonly);
  EXPECT_FALSE(ro->mounts[0].recursive_readonly);
  EXPECT_EQ(ro->mounts[0].flags & MS_RDONLY, 0u);  // set with mount_setattr, not mount(2)

  auto rro = buildPlan(specWith(dir, {"/data", "bind", dir.path(), {"rbind", "rslave", "rro"}}));
  ASSERT_TRUE(rro) << rro.error().message();
  EXPECT_TRUE(rro->mounts[0].readonly);
  EXPECT_TRUE(rro->mounts[0].recursive_readonly);
  EXPECT_EQ(rro->mounts[0].propagation, static_cast<unsigned long>(MS_SLAVE | MS_REC));

  auto rw = buildPlan(specWith(dir, {"/data", "bind", dir.path(), {"rbind", "rw"}}));
  ASSERT_TRUE(rw) << rw.error().message();
  EXPECT_FALSE(rw->mounts[0].readonly);
  EXPECT_FALSE(rw->mounts[0].recursive_readonly);

  auto tmpfs = buildPlan(specWith(dir, {"/data", "tmpfs", "tmpfs", {"rro"}}));
  ASSERT_FALSE(tmpfs);
  EXPECT_EQ(tmpfs.error().message(),
            "container spec `mounts[0].options`: \"rro\" is only for a bind mount");
}

TEST(MountOptions, AFdOnlyMountWithoutItsFdIsRefused) {
  TempDir dir;
  Mount m{"/data", "bind", dir.path() + "/sub", {"rbind", "rprivate", "rw"}};
  m.source_fd_only = true;
  auto refused = buildPlan(specWith(dir, m));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(),
            "container spec `mounts[0].source`: \"" + dir.path() +
                "/sub\" may only be bound through its resolved fd, and none was given");
  UniqueFd fd(::open(dir.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  m.source_fd = fd.get();
  auto ok = buildPlan(specWith(dir, m));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_GE(ok->mounts[0].tree, 5);
}

}  // namespace
}  // namespace kernelet::isolation
