#include <gtest/gtest.h>

#include "sys/result.h"

namespace kernelet {
namespace {

TEST(Error, MessageNamesOpPathAndErrnoLikeCrun) {
  Error e = sysError(EPERM, "mount", "/var/lib/kernelet/rootfs").error();
  EXPECT_EQ(e.message(), "mount `/var/lib/kernelet/rootfs`: Operation not permitted");
}

TEST(Error, DetailStandsWhereStrerrorWould) {
  Error e = makeError("parse", "/etc/pods/a.yaml", "line 3: expected a mapping").error();
  EXPECT_EQ(e.message(), "parse `/etc/pods/a.yaml`: line 3: expected a mapping");
}

TEST(Error, ContextIsPrependedOnTheWayUp) {
  Result<int> r = sysError(ENOENT, "exec", "/bin/nope");
  r = addContext(std::move(r), "start container app");
  r = addContext(std::move(r), "pod default/web");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "pod default/web: start container app: exec `/bin/nope`: No such file or directory");
}

TEST(Error, CleanupFailuresRideAlongWithoutReplacingTheError) {
  Error e = sysError(EACCES, "open", "/x").error();
  e.cleanup.push_back("rmdir `/sys/fs/cgroup/a`: Device or resource busy");
  EXPECT_EQ(e.message(),
            "open `/x`: Permission denied (cleanup: rmdir `/sys/fs/cgroup/a`: Device or resource "
            "busy)");
}

Result<int> half(int v) {
  if (v % 2 != 0) {
    return makeError("half", "", "odd value " + std::to_string(v));
  }
  return v / 2;
}

Result<int> quarter(int v) {
  TRY(int h, half(v));
  TRY(int q, half(h));
  return q;
}

TEST(Result, TryPropagatesTheFirstError) {
  EXPECT_EQ(quarter(8).value(), 2);
  ASSERT_FALSE(quarter(6));
  EXPECT_EQ(quarter(6).error().message(), "half: odd value 3");
}

}  // namespace
}  // namespace kernelet
