// Image garbage collection on a real small filesystem (a 64 MiB tmpfs in the
// test's own mount namespace), in the test VM: importing images past the high
// threshold (85%) deletes the least recently used unused ones down to the low
// one (80%), an image a running container's overlay stands on survives, and
// its layers survive even when its record goes.
#include "images/image_gc.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "images/image_store.h"
#include "images/rootfs.h"
#include "support/oci_layout.h"
#include "support/privileged.h"
#include "support/temp_dir.h"

namespace kernelet::images {
namespace {

namespace fs = std::filesystem;
using testing::noise;
using testing::TarEntry;

constexpr int64_t kMiB = 1 << 20;

class ImageGcFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    fs_ = tmp_.path() + "/imagefs";
    fs::create_directories(fs_);
    ASSERT_EQ(::mount("tmpfs", fs_.c_str(), "tmpfs", 0, "size=64m"), 0) << strerror(errno);
    mounted_ = true;
    auto s = ImageStore::open(fs_ + "/store");
    ASSERT_TRUE(s) << s.error().message();
    store_.emplace(std::move(*s));
  }
  void TearDown() override {
    if (rootfs_) {
      (void)rootfs_->remove();
    }
    if (mounted_) {
      ::umount2(fs_.c_str(), MNT_DETACH);
    }
  }
  // img-NAME:1, 3 MiB of its own (6 MiB in the store: the blob and the
  // unpacked file) over a shared base, used at `used`.
  void import(const std::string& name, int64_t used) {
    std::vector<TarEntry> base = {{.path = "bin/base", .content = noise(128 << 10, 1)}};
    std::vector<TarEntry> own = {{.path = name, .content = noise(3 * kMiB, seed_++)}};
    std::string layout =
        testing::writeOciLayout(tmp_.path() + "/layout-" + name, "img-" + name + ":1", {base, own});
    auto r = store_->importLayout(layout);
    ASSERT_TRUE(r) << r.error().message();
    fs::remove_all(layout);
    ASSERT_TRUE(store_->touch("img-" + name + ":1", used));
  }
  int usage() { return usagePercent(filesystemUsage(fs_).value()); }
  bool has(const std::string& name) { return store_->find("img-" + name + ":1").has_value(); }

  testing::TempDir tmp_;
  std::string fs_;
  bool mounted_ = false;
  std::optional<ImageStore> store_;
  std::optional<Rootfs> rootfs_;
  uint32_t seed_ = 1000;
  const int64_t later_ = ::time(nullptr) + 3600;  // past imageMinimumGCAge of all
};

TEST_F(ImageGcFsTest, ImportsPastHighAreCollectedDownToLowAndAnImageInUseSurvives) {
  // The least recently used of all, but a container runs on it.
  import("inuse", later_ - 10000);
  auto rootfs = Rootfs::mount(store_->lowerDirs(*store_->find("img-inuse:1")), fs_ + "/c1");
  ASSERT_TRUE(rootfs) << rootfs.error().message();
  rootfs_.emplace(std::move(*rootfs));
  ImageGarbageCollector gc(*store_, {});  // the kubelet's defaults, the real statfs
  std::vector<std::string> removed;
  bool crossed = false;
  for (int i = 0; i < 14; i++) {
    import(std::to_string(i), later_ - 5000 + i);
    ImageGarbageCollector::Pass pass;
    auto r = gc.collect({"img-inuse:1"}, later_, &pass);
    ASSERT_TRUE(r) << r.error().message();
    int before = pass.usage_percent;
    if (before >= 85) {
      crossed = true;
      EXPECT_GT(pass.to_free, 0);
      EXPECT_LE(usage(), 80) << "after import " << i;
      removed.insert(removed.end(), pass.removed.begin(), pass.removed.end());
    } else {
      EXPECT_TRUE(pass.removed.empty()) << "under the high threshold at " << before << "%";
    }
  }
  ASSERT_TRUE(crossed) << "the imports never filled the filesystem past 85%";
  // Oldest first, never the one in use; the newest are all there.
  ASSERT_FALSE(removed.empty());
  for (size_t k = 0; k < removed.size(); k++) {
    EXPECT_EQ(removed[k], "docker.io/library/img-" + std::to_string(k) + ":1");
  }
  EXPECT_TRUE(has("inuse"));
  EXPECT_TRUE(has("13"));
  EXPECT_TRUE(has("12"));
  std::ifstream in(rootfs_->path() + "/inuse");
  EXPECT_TRUE(in.good()) << "the running container's rootfs lost its layer";
}

TEST_F(ImageGcFsTest, ALayerAnOverlayMountsIsKeptWhenItsImageGoes) {
  import("a", later_ - 100);
  ImageRecord a = store_->find("img-a:1").value();
  auto rootfs = Rootfs::mount(store_->lowerDirs(a), fs_ + "/c1");
  ASSERT_TRUE(rootfs) << rootfs.error().message();
  rootfs_.emplace(std::move(*rootfs));
  EXPECT_EQ(store_->mountedLayers().size(), 2u);
  // A re-tag would drop the record while the container runs: its files stay.
  auto freed = store_->removeImage(a.name);
  ASSERT_TRUE(freed) << freed.error().message();
  EXPECT_FALSE(has("a"));
  for (const auto& dir : store_->lowerDirs(a)) {
    EXPECT_TRUE(fs::exists(dir)) << dir;
  }
  EXPECT_TRUE(fs::exists(rootfs_->path() + "/a"));
  EXPECT_LT(*freed, 3 * kMiB + kMiB);  // the blobs only, not the unpacked 3 MiB
  // Once unmounted, the sweep of `kernelet images rm` takes them.
  ASSERT_TRUE(rootfs_->remove());
  rootfs_.reset();
  ASSERT_TRUE(store_->collectGarbage());
  for (const auto& dir : store_->lowerDirs(a)) {
    EXPECT_FALSE(fs::exists(dir)) << dir;
  }
}

}  // namespace
}  // namespace kernelet::images
