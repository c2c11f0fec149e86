// volumeMounts[].subPath and subPathExpr: decoding as the API validates them,
// expansion as the kubelet does it, and the resolver that opens a subpath
// inside a volume directory (agent/runtime/subpath.h). All unprivileged: the
// detached mount and its attach are for the VM (agent_volumes_test).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "agent/model/pod.h"
#include "agent/runtime/subpath.h"

namespace kernelet::agent {
namespace {

std::string podWithMount(const std::string& mount) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
         "  - name: c\n    image: i\n    volumeMounts:\n    - " +
         mount + "\n  volumes: [{name: v, emptyDir: {}}]\n";
}

void expectError(const std::string& mount, const std::string& error) {
  auto pods = parseManifests(podWithMount(mount), "/m/p.yaml");
  ASSERT_FALSE(pods) << mount;
  EXPECT_EQ(pods.error().message(), "parse manifest `/m/p.yaml`: line 9: " + error);
}

TEST(SubPathDecode, KeepsSubPathAndSubPathExpr) {
  auto pods = parseManifests(
      podWithMount("{name: v, mountPath: /a, subPath: dir/file.conf}\n"
                   "    - {name: v, mountPath: /b, subPathExpr: \"logs/$(POD_NAME)\"}"),
      "/m/p.yaml");
  ASSERT_TRUE(pods) << pods.error().message();
  const auto& mounts = (*pods)[0].pod.containers[0].volume_mounts;
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_EQ(mounts[0].sub_path, "dir/file.conf");
  EXPECT_EQ(mounts[0].sub_path_expr, "");
  EXPECT_EQ(mounts[1].sub_path_expr, "logs/$(POD_NAME)");
}

// ValidateVolumeMounts' messages: validateLocalDescendingPath for both, and
// the two may not be set together.
TEST(SubPathDecode, RefusesWhatTheApiRefuses) {
  expectError("{name: v, mountPath: /a, subPath: /etc}",
              "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"/etc\": must be a "
              "relative path");
  expectError("{name: v, mountPath: /a, subPath: a/../../b}",
              "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"a/../../b\": must not "
              "contain '..'");
  expectError("{name: v, mountPath: /a, subPathExpr: \"..\"}",
              "spec.containers[0].volumeMounts[0].subPathExpr: Invalid value: \"..\": must not "
              "contain '..'");
  expectError("{name: v, mountPath: /a, subPath: x, subPathExpr: y}",
              "spec.containers[0].volumeMounts[0].subPathExpr: Invalid value: \"y\": subPathExpr "
              "and subPath are mutually exclusive");
  // "..." and "a..b" are names, not backsteps.
  EXPECT_TRUE(parseManifests(podWithMount("{name: v, mountPath: /a, subPath: .../a..b}"), "/m"));
}

TEST(SubPathExpr, ExpandsAsTheKubeletDoes) {
  std::map<std::string, std::string> env = {{"POD_NAME", "web-0"}, {"NS", "prod"}, {"E", ""}};
  EXPECT_EQ(expandSubPathExpr("logs/$(POD_NAME)", env).value(), "logs/web-0");
  EXPECT_EQ(expandSubPathExpr("$(NS)/$(POD_NAME).d", env).value(), "prod/web-0.d");
  EXPECT_EQ(expandSubPathExpr("a$$(NS)", env).value(), "a$(NS)");  // $$ escapes
  EXPECT_EQ(expandSubPathExpr("a$(NS", env).value(), "a$(NS");     // unclosed: as written
  EXPECT_EQ(expandSubPathExpr("$x$", env).value(), "$x$");
  auto missing = expandSubPathExpr("$(Z)/$(E)/$(A)/$(Z)", env);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "missing value for A, E, Z");
}

TEST(SubPathExpr, TheExpansionMustStayRelativeAndDescending) {
  std::map<std::string, std::string> env = {{"ROOT", "/etc"}, {"UP", ".."}, {"D", "x"}};
  auto abs = mountSubPath({.name = "v", .sub_path_expr = "$(ROOT)"}, env);
  ASSERT_FALSE(abs);
  EXPECT_EQ(abs.error().message(), "error SubPath `/etc` must not be an absolute path");
  auto up = mountSubPath({.name = "v", .sub_path_expr = "a/$(UP)/b"}, env);
  ASSERT_FALSE(up);
  EXPECT_EQ(up.error().message(), "unable to provision SubPath `a/../b`: must not contain '..'");
  EXPECT_EQ(mountSubPath({.name = "v", .sub_path_expr = "$(D)/y"}, env).value(), "x/y");
  EXPECT_EQ(mountSubPath({.name = "v", .sub_path = "plain"}, env).value(), "plain");
  EXPECT_EQ(mountSubPath({.name = "v"}, env).value(), "");
}

// A volume directory in a temp dir, next to a "host" file outside it.
class SubPathResolve : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kernelet-subpath-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    vol_ = root_ + "/vol";
    ASSERT_EQ(::mkdir(vol_.c_str(), 0777), 0);
    ASSERT_EQ(::chmod(vol_.c_str(), 02775), 0);  // setgid, as with an fsGroup
    std::ofstream(root_ + "/host-secret") << "host";
    std::filesystem::create_directories(vol_ + "/a/b");
    std::ofstream(vol_ + "/a/b/file.conf") << "conf";
    dir_.reset(::open(vol_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // What `sub_path` opens to: its stat, or the error message.
  Result<struct stat> open(const std::string& sub_path, bool create = false) {
    if (create) {
      TRY_VOID(makeSubPathDirs(dir_.get(), sub_path));
    }
    TRY(UniqueFd fd, openSubPath(dir_.get(), sub_path));
    struct stat st {};
    EXPECT_EQ(::fstat(fd.get(), &st), 0);
    return st;
  }
  ino_t inode(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_ino;
  }

  std::string root_, vol_;
  UniqueFd dir_;
};

TEST_F(SubPathResolve, NestedDirectoryAndFile) {
  auto dir = open("a/b");
  ASSERT_TRUE(dir) << dir.error().message();
  EXPECT_TRUE(S_ISDIR(dir->st_mode));
  EXPECT_EQ(dir->st_ino, inode(vol_ + "/a/b"));
  auto file = open("a/b/file.conf");
  ASSERT_TRUE(file) << file.error().message();
  EXPECT_TRUE(S_ISREG(file->st_mode));  // a file subPath: the mount point is a file
  EXPECT_TRUE(open("./a//b/"));
}

TEST_F(SubPathResolve, AMissingSubPathIsCreatedWithTheVolumesMode) {
  ::umask(022);
  auto made = open("new/deeper", true);
  ASSERT_TRUE(made) << made.error().message();
  EXPECT_TRUE(S_ISDIR(made->st_mode));
  EXPECT_EQ(made->st_mode & 07777, 02775u);  // past the umask, as the kubelet's fchmod
  struct stat parent {};
  ASSERT_EQ(::stat((vol_ + "/new").c_str(), &parent), 0);
  EXPECT_EQ(parent.st_mode & 07777, 02775u);
  // Without the create step a missing one is an error, not a directory.
  auto missing = open("absent");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().errnum, ENOENT);
}

TEST_F(SubPathResolve, ASymlinkThatStaysInsideIsFollowed) {
  ASSERT_EQ(::symlink("a/b", (vol_ + "/link").c_str()), 0);
  ASSERT_EQ(::symlink("../b/file.conf", (vol_ + "/a/b/rel").c_str()), 0);
  auto via = open("link/file.conf");
  ASSERT_TRUE(via) << via.error().message();
  EXPECT_EQ(via->st_ino, inode(vol_ + "/a/b/file.conf"));
  auto rel = open("a/b/rel");
  ASSERT_TRUE(rel) << rel.error().message();
  EXPECT_EQ(rel->st_ino, inode(vol_ + "/a/b/file.conf"));
}

// The attack: a container sharing the volume plants links out of it.
TEST_F(SubPathResolve, LinksOutOfTheVolumeAreRefused) {
  ASSERT_EQ(::symlink("/", (vol_ + "/evil").c_str()), 0);
  ASSERT_EQ(::symlink("../..", (vol_ + "/up").c_str()), 0);
  ASSERT_EQ(::symlink("../host-secret", (vol_ + "/a/../sibling").c_str()), 0);
  ASSERT_EQ(::symlink("/proc/self/root", (vol_ + "/magic").c_str()), 0);
  for (std::string p : {"evil", "evil/etc", "up", "up/tmp", "sibling", "a/../evil"}) {
    for (bool create : {false, true}) {
      auto r = open(p, create);
      ASSERT_FALSE(r) << p << " opened";
      EXPECT_EQ(r.error().message(), "open subPath `" + p + "`: resolves outside of the volume")
          << p;
    }
  }
  // Absolute, so refused as such; /proc/self/root would be a magic link.
  EXPECT_FALSE(open("magic"));
  EXPECT_FALSE(open("magic/etc", true));
  // Nothing was created through a link: beside the volume is what was there.
  std::set<std::string> beside;
  for (const auto& e : std::filesystem::directory_iterator(root_)) {
    beside.insert(e.path().filename());
  }
  EXPECT_EQ(beside, (std::set<std::string>{"host-secret", "vol"}));
}

TEST_F(SubPathResolve, ADanglingLinkIsNotCreatedThrough) {
  ASSERT_EQ(::symlink("gone/deeper", (vol_ + "/dangling").c_str()), 0);
  auto r = open("dangling", true);
  ASSERT_FALSE(r);
  EXPECT_FALSE(std::filesystem::exists(vol_ + "/gone"));
  ASSERT_EQ(::symlink("../made-outside", (vol_ + "/out").c_str()), 0);
  EXPECT_FALSE(open("out", true));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/made-outside"));
}

TEST_F(SubPathResolve, AFileOnTheWayIsNotADirectory) {
  auto r = open("a/b/file.conf/x", true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, ENOTDIR) << r.error().message();
}

TEST_F(SubPathResolve, AbsoluteAndEmptyAreRefused) {
  EXPECT_FALSE(open("/etc"));
  EXPECT_FALSE(open("/etc", true));
  EXPECT_FALSE(open(""));
  EXPECT_FALSE(open("."));
}

}  // namespace
}  // namespace kernelet::agent
