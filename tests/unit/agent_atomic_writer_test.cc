// The atomic writer against a hostile volume directory: a container (or
// anyone) may have planted symlinks in it - ..data pointing out of the volume,
// a timestamped dir replaced by a symlink, a user-visible name turned into a
// link to a host path - and payload paths come from users. Whatever is planted,
// the writer must not open, write or delete anything outside the volume dir:
// each test watches a canary dir beside the volume with inotify and checks its
// files afterwards, and then checks that the volume serves the new files again.
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "agent/runtime/atomic_writer.h"
#include "support/temp_dir.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;

using Files = std::map<std::string, VolumeFile>;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every entry under `dir` (symlinks not followed): relative path -> content,
// "<dir>" or "-> target".
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::string rel = fs::relative(it->path(), dir).string();
    if (it->is_symlink()) {
      out[rel] = "-> " + fs::read_symlink(it->path()).string();
    } else if (it->is_directory()) {
      out[rel] = "<dir>";
    } else {
      out[rel] = slurp(it->path().string());
    }
  }
  return out;
}

// Every inotify event on a few directories, as "name mask" lines: an open, a
// read, a listing, a write or a delete in them shows up here.
class Watch {
 public:
  explicit Watch(const std::vector<std::string>& dirs)
      : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    for (const auto& d : dirs) {
      EXPECT_GE(::inotify_add_watch(fd_.get(), d.c_str(), IN_ALL_EVENTS | IN_DONT_FOLLOW), 0) << d;
    }
  }
  std::string events() const {
    std::string out;
    alignas(inotify_event) char buf[8192];
    ssize_t n;
    while ((n = ::read(fd_.get(), buf, sizeof buf)) > 0) {
      for (char* p = buf; p < buf + n;) {
        auto* e = reinterpret_cast<inotify_event*>(p);
        out += std::string(e->len ? e->name : "(dir)") + " mask=" + std::to_string(e->mask) + "\n";
        p += sizeof(inotify_event) + e->len;
      }
    }
    return out;
  }

 private:
  UniqueFd fd_;
};

class HostileVolume : public ::testing::Test {
 protected:
  void SetUp() override {
    vol_ = tmp_.path() + "/vol";
    canary_ = tmp_.path() + "/canary";
    fs::create_directories(vol_);
    fs::create_directories(canary_ + "/sub");
    std::ofstream(canary_ + "/labels") << "app=\"demo\"";  // the payload's name and content
    std::ofstream(canary_ + "/secret") << "host data";
    std::ofstream(canary_ + "/sub/f") << "nested host data";
    before_ = snapshot(canary_);
  }

  // Starts watching the canary: anything the writer does there from now on is seen.
  void watch() { watch_.emplace(std::vector<std::string>{canary_, canary_ + "/sub"}); }

  void expectCanaryUntouched() {
    if (watch_) {
      EXPECT_EQ(watch_->events(), "") << "the writer reached into the canary dir";
    }
    EXPECT_EQ(snapshot(canary_), before_);
  }

  // The volume as the kubelet lays it out, serving exactly `files`.
  void expectVolumeServes(const Files& files) {
    std::error_code ec;
    ASSERT_TRUE(fs::is_symlink(vol_ + "/..data"));
    std::string ts = fs::read_symlink(vol_ + "/..data").string();
    EXPECT_TRUE(ts.starts_with("..") && ts.find('/') == std::string::npos) << ts;
    EXPECT_TRUE(fs::is_directory(fs::symlink_status(vol_ + "/" + ts))) << ts << " is not a dir";
    std::set<std::string> top;
    for (const auto& [path, f] : files) {
      top.insert(path.substr(0, path.find('/')));
      EXPECT_EQ(slurp(vol_ + "/" + path), f.content) << path;
      EXPECT_EQ(fs::weakly_canonical(vol_ + "/" + path).string().rfind(vol_ + "/", 0), 0u)
          << path << " resolves outside the volume: " << fs::weakly_canonical(vol_ + "/" + path);
    }
    std::set<std::string> entries;
    for (const auto& e : fs::directory_iterator(vol_, ec)) {
      entries.insert(e.path().filename().string());
    }
    std::set<std::string> want = top;
    want.insert("..data");
    want.insert(ts);
    EXPECT_EQ(entries, want);
    for (const auto& name : top) {
      EXPECT_EQ(fs::read_symlink(vol_ + "/" + name, ec).string(), "..data/" + name);
    }
  }

  void replaceWithSymlink(const std::string& name, const std::string& target) {
    fs::remove_all(vol_ + "/" + name);
    fs::create_symlink(target, vol_ + "/" + name);
  }

  std::string dataTarget() const { return fs::read_symlink(vol_ + "/..data").string(); }

  testing::TempDir tmp_;
  std::string vol_, canary_;
  std::map<std::string, std::string> before_;
  std::optional<Watch> watch_;
  const Files first_ = {{"labels", {"app=\"demo\"", 0644}}};
  const Files second_ = {{"labels", {"app=\"demo\"\ntier=\"web\"", 0644}}};
};

// The incident: the container pointed ..data up and out of the volume and the
// next update deleted what it pointed at.
TEST_F(HostileVolume, DataLinkLeadingOutOfTheVolumeIsNeitherFollowedNorDeleted) {
  ASSERT_TRUE(writeAtomically(vol_, first_));
  for (std::string target : {"../canary", "..x/../../canary"}) {
    SCOPED_TRACE(target);
    replaceWithSymlink("..data", target);
    watch();
    auto r = writeAtomically(vol_, second_);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(*r);
    expectCanaryUntouched();
    expectVolumeServes(second_);
  }
}

// ..data pointing at a host dir that holds the payload's file (and more): the
// writer must neither read it nor leave the volume pointing there.
TEST_F(HostileVolume, DataLinkToAnAbsoluteHostDirIsNotReadAndIsReplaced) {
  ASSERT_TRUE(writeAtomically(vol_, first_));
  replaceWithSymlink("..data", canary_);
  watch();
  auto r = writeAtomically(vol_, first_);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(*r) << "the volume pointed outside and was left so";
  expectCanaryUntouched();
  expectVolumeServes(first_);
}

TEST_F(HostileVolume, DataLinkToTheRootIsReplaced) {
  ASSERT_TRUE(writeAtomically(vol_, first_));
  replaceWithSymlink("..data", "/");
  auto r = writeAtomically(vol_, second_);
  ASSERT_TRUE(r) << r.error().message();
  expectCanaryUntouched();
  expectVolumeServes(second_);
  EXPECT_TRUE(fs::is_directory("/etc"));
}

TEST_F(HostileVolume, TimestampedDirReplacedBySymlinkIsNotReadAndIsReplaced) {
  ASSERT_TRUE(writeAtomically(vol_, first_));
  std::string ts = dataTarget();
  replaceWithSymlink(ts, canary_);
  watch();
  auto r = writeAtomically(vol_, first_);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(*r);
  expectCanaryUntouched();
  expectVolumeServes(first_);
}

// A user-visible name that links to a host file or dir is put back to ..data/NAME.
TEST_F(HostileVolume, UserVisibleNamesLinkedToHostPathsAreRepaired) {
  Files files = {{"labels", {"app=\"demo\"", 0644}}, {"sub/f", {"volume data", 0644}}};
  ASSERT_TRUE(writeAtomically(vol_, files));
  replaceWithSymlink("labels", canary_ + "/secret");
  replaceWithSymlink("sub", canary_ + "/sub");
  watch();
  files["labels"].content = "app=\"other\"";
  auto r = writeAtomically(vol_, files);
  ASSERT_TRUE(r) << r.error().message();
  expectCanaryUntouched();
  expectVolumeServes(files);
}

// The same with no change to the data: the layout alone is wrong, and repaired.
TEST_F(HostileVolume, UnchangedDataButAPlantedNameIsStillRepaired) {
  ASSERT_TRUE(writeAtomically(vol_, first_));
  replaceWithSymlink("labels", canary_ + "/secret");
  fs::create_symlink(canary_, vol_ + "/extra");
  watch();
  auto r = writeAtomically(vol_, first_);
  ASSERT_TRUE(r) << r.error().message();
  expectCanaryUntouched();
  expectVolumeServes(first_);
}

TEST_F(HostileVolume, AVolumeDirThatIsASymlinkIsRefused) {
  std::string link = tmp_.path() + "/link";
  fs::create_symlink(canary_, link);
  watch();
  auto r = writeAtomically(link, first_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find(link), std::string::npos) << r.error().message();
  expectCanaryUntouched();
}

// items[].path comes from users: the kubelet's validatePath rules.
TEST_F(HostileVolume, PayloadPathsThatLeaveTheVolumeOrUseItsReservedNamesAreRefused) {
  for (std::string path :
       {std::string("../../canary/evil"), canary_ + "/evil", std::string("a/../../../canary/evil"),
        std::string("a/../b"), std::string(".."), std::string("..data"), std::string("..evil/x"),
        std::string(""), std::string(300, 'x')}) {
    SCOPED_TRACE(path);
    watch();
    auto r = writeAtomically(vol_, {{"ok", {"fine", 0644}}, {path, {"evil", 0644}}});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("invalid path"), std::string::npos) << r.error().message();
    expectCanaryUntouched();
    EXPECT_TRUE(fs::is_empty(vol_)) << "a refused payload wrote something";
  }
  // Names that only look alike are fine: a dot-prefixed file, ".." inside a name.
  Files fine = {{".hidden", {"1", 0644}}, {"a..b/c", {"2", 0644}}, {"./d", {"3", 0644}}};
  auto r = writeAtomically(vol_, fine);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(slurp(vol_ + "/.hidden"), "1");
  EXPECT_EQ(slurp(vol_ + "/a..b/c"), "2");
  EXPECT_EQ(slurp(vol_ + "/d"), "3");
}

}  // namespace
}  // namespace kernelet::agent
