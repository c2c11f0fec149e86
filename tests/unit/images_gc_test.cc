// Image garbage collection (images/image_gc.h) on a real store on the host,
// with the filesystem's size made up so that the store's own files are what
// fills it: LRU order, images in use and too young kept, thresholds, the
// kubelet's error, the persisted times, what removal frees and keeps.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "images/digest.h"
#include "images/image_gc.h"
#include "images/image_store.h"
#include "support/oci_layout.h"
#include "support/temp_dir.h"

namespace kernelet::images {
namespace {

namespace fs = std::filesystem;
using testing::noise;
using testing::TarEntry;
using testing::TempDir;

constexpr int64_t kMiB = 1 << 20;

int64_t du(const std::string& path) {
  int64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(path)) {
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) == 0) {
      total += static_cast<int64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

class ImageGcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = ImageStore::open(dir_.path() + "/store");
    ASSERT_TRUE(s) << s.error().message();
    store_.emplace(std::move(*s));
  }
  // img-NAME:1: a shared base layer and a layer of its own of `mib` MiB.
  void import(const std::string& name, int64_t mib = 1, uint32_t seed = 0) {
    std::vector<TarEntry> base = {{.path = "base", .content = noise(256 << 10, 7)}};
    std::vector<TarEntry> own = {
        {.path = name,
         .content = noise(static_cast<size_t>(mib * kMiB), seed != 0 ? seed : seed_++)}};
    std::string layout =
        testing::writeOciLayout(dir_.path() + "/layout-" + name, "img-" + name + ":1", {base, own});
    auto r = store_->importLayout(layout);
    ASSERT_TRUE(r) << r.error().message();
    fs::remove_all(layout);
  }
  static std::string full(const std::string& name) {
    return "docker.io/library/img-" + name + ":1";
  }
  std::vector<std::string> names() {
    std::vector<std::string> out;
    std::vector<ImageRecord> all = store_->list().value();
    for (const auto& r : all) {
      out.push_back(r.name);
    }
    return out;
  }
  // A filesystem of `capacity` bytes that holds the store and nothing else.
  ImageGarbageCollector::Options options(int64_t capacity, ImageGcPolicy policy = {}) {
    std::string root = store_->root();
    return {.policy = policy, .usage = [root, capacity]() -> Result<FsUsage> {
              return FsUsage{.capacity = capacity, .available = capacity - du(root)};
            }};
  }
  TempDir dir_;
  std::optional<ImageStore> store_;
  uint32_t seed_ = 100;
  // Well past imageMinimumGCAge of everything imported now.
  const int64_t later_ = ::time(nullptr) + 3600;
};

TEST(ImageGcArithmetic, AsTheKubeletComputesIt) {
  ImageGcPolicy p;
  EXPECT_EQ(usagePercent({.capacity = 100, .available = 15}), 85);
  EXPECT_EQ(usagePercent({.capacity = 1000, .available = 151}), 85);   // 100 - 84 (integer)
  EXPECT_EQ(bytesToFree({.capacity = 1000, .available = 160}, p), 0);  // 84%: under high
  // At 85%: down to 80% used, i.e. 200 available.
  EXPECT_EQ(bytesToFree({.capacity = 1000, .available = 150}, p), 50);
  EXPECT_EQ(bytesToFree({.capacity = 0, .available = 0}, p), 0);
}

TEST(ImageGcPolicyValidation, ErrorsNameTheFieldAndFlag) {
  EXPECT_TRUE(validateImageGcPolicy({}));
  auto high = validateImageGcPolicy({.high_threshold_percent = 101});
  ASSERT_FALSE(high);
  EXPECT_EQ(high.error().message(),
            "imageGCHighThresholdPercent (--image-gc-high-threshold): 101 must be between 0 "
            "and 100, inclusive");
  auto low = validateImageGcPolicy({.high_threshold_percent = 80, .low_threshold_percent = 80});
  ASSERT_FALSE(low);
  EXPECT_EQ(low.error().message(),
            "imageGCLowThresholdPercent (--image-gc-low-threshold): 80 must be less than "
            "imageGCHighThresholdPercent (--image-gc-high-threshold) 80");
  EXPECT_FALSE(validateImageGcPolicy({.low_threshold_percent = -1}));
  auto max = validateImageGcPolicy({.min_age_seconds = 120, .max_age_seconds = 60});
  ASSERT_FALSE(max);
  EXPECT_EQ(max.error().message(),
            "imageMaximumGCAge: 60s must be greater than imageMinimumGCAge 120s");
}

TEST(ImageGcOrder, LeastRecentlyUsedFirstThenFirstDetected) {
  std::vector<ImageRecord> all = {
      {.name = "a", .config_digest = "A", .first_detected = 10, .last_used = 50},
      {.name = "b", .config_digest = "B", .first_detected = 20, .last_used = 30},
      {.name = "c", .config_digest = "C", .first_detected = 5, .last_used = 30},
      {.name = "used", .config_digest = "U", .first_detected = 1, .last_used = 1},
      {.name = "pinned", .config_digest = "P", .first_detected = 1, .last_used = 1},
      {.name = "young", .config_digest = "Y", .first_detected = 990, .last_used = 2},
  };
  auto order = deletionOrder(all, {"U"}, {"P"}, {.min_age_seconds = 120}, 1000);
  std::vector<std::string> got;
  for (const auto& r : order) {
    got.push_back(r.name);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"c", "b", "a"}));
}

TEST_F(ImageGcTest, AboveHighFreesLeastRecentlyUsedUnusedDownToLowAndSparesInUse) {
  for (const char* n : {"a", "b", "c", "d", "e", "f"}) {
    import(n);
  }
  // Used in this order, b long ago but by a pod now.
  int64_t t = later_ - 1000;
  for (const char* n : {"b", "a", "c", "d", "e", "f"}) {
    ASSERT_TRUE(store_->touch(full(n), t += 10));
  }
  int64_t used = du(store_->root());
  // 97% full: to be at 80% takes more than one image's worth.
  int64_t capacity = used * 100 / 97;
  ImageGarbageCollector gc(*store_, options(capacity));
  ImageGarbageCollector::Pass pass;
  auto r = gc.collect({"img-b:1"}, later_, &pass);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_GE(pass.usage_percent, 85);
  EXPECT_GT(pass.to_free, 0);
  EXPECT_GE(pass.freed, pass.to_free);
  // a then c went (b is in use); d, e and f were not needed.
  EXPECT_EQ(pass.removed, (std::vector<std::string>{full("a"), full("c")}));
  EXPECT_EQ(names(), (std::vector<std::string>{full("b"), full("d"), full("e"), full("f")}));
  EXPECT_LE(usagePercent({.capacity = capacity, .available = capacity - du(store_->root())}), 80);
  // The in-use image was used now; the shared base layer is still there.
  EXPECT_EQ(store_->find("img-b:1")->last_used, later_);
  EXPECT_EQ(store_->lowerDirs(*store_->find("img-d:1")).size(), 2u);
  for (const auto& dir : store_->lowerDirs(*store_->find("img-d:1"))) {
    EXPECT_TRUE(fs::exists(dir)) << dir;
  }
  // Under the threshold now: the next pass does nothing.
  auto again = gc.collect({"img-b:1"}, later_, &pass);
  ASSERT_TRUE(again);
  EXPECT_EQ(pass.to_free, 0);
  EXPECT_TRUE(pass.removed.empty());
}

TEST_F(ImageGcTest, UnderHighNothingGoes) {
  import("a");
  import("b");
  int64_t capacity = du(store_->root()) * 100 / 80;
  ImageGarbageCollector gc(*store_, options(capacity));
  ImageGarbageCollector::Pass pass;
  ASSERT_TRUE(gc.collect({}, later_, &pass));
  EXPECT_EQ(pass.to_free, 0);
  EXPECT_EQ(names().size(), 2u);
}

TEST_F(ImageGcTest, TooYoungOrInUseIsTheKubeletsFreeDiskSpaceError) {
  import("a");
  import("b");
  int64_t capacity = du(store_->root()) * 100 / 95;
  ImageGarbageCollector gc(*store_, options(capacity));
  ImageGarbageCollector::Pass pass;
  // Both imported a moment ago: younger than imageMinimumGCAge (2m).
  auto r = gc.collect({}, ::time(nullptr), &pass);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "Failed to garbage collect required amount of images. Attempted to free " +
                std::to_string(pass.to_free) + " bytes, but only found 0 bytes eligible to free.");
  EXPECT_EQ(names().size(), 2u);
  // Old enough, but both in use (one by digest, one by its short name).
  std::string id = store_->find("img-a:1")->config_digest;
  auto used = gc.collect({id, "img-b:1"}, later_, &pass);
  ASSERT_FALSE(used);
  EXPECT_EQ(names().size(), 2u);
}

TEST_F(ImageGcTest, TimesSurviveAReopenSoARestartDoesNotMakeImagesYoung) {
  import("a", 1, 42);
  ImageRecord before = store_->find("img-a:1").value();
  EXPECT_GT(before.first_detected, 0);
  EXPECT_EQ(before.last_used, before.first_detected);
  ASSERT_TRUE(store_->touch(full("a"), before.last_used + 500));
  auto reopened = ImageStore::open(store_->root());
  ASSERT_TRUE(reopened);
  ImageRecord after = reopened->find("img-a:1").value();
  EXPECT_EQ(after.first_detected, before.first_detected);
  EXPECT_EQ(after.last_used, before.last_used + 500);
  // A re-import of the same image keeps when it was first detected, and is a use.
  import("a", 1, 42);
  ImageRecord again = store_->find("img-a:1").value();
  EXPECT_EQ(again.config_digest, before.config_digest);
  EXPECT_EQ(again.first_detected, before.first_detected);
}

TEST_F(ImageGcTest, MaximumAgeRemovesLongUnusedImagesWhateverTheUsage) {
  import("old");
  import("new");
  ASSERT_TRUE(store_->touch(full("old"), later_ - 7200));
  ASSERT_TRUE(store_->touch(full("new"), later_ - 60));
  int64_t capacity = du(store_->root()) * 10;  // 10% used
  ImageGarbageCollector gc(*store_,
                           options(capacity, {.min_age_seconds = 120, .max_age_seconds = 3600}));
  ImageGarbageCollector::Pass pass;
  ASSERT_TRUE(gc.collect({}, later_, &pass));
  EXPECT_EQ(pass.removed, std::vector<std::string>{full("old")});
  EXPECT_EQ(names(), std::vector<std::string>{full("new")});
}

TEST_F(ImageGcTest, RemovingAnImageKeepsWhatAnotherShares) {
  import("a", 2);
  import("b", 1);
  ImageRecord a = store_->find("img-a:1").value();
  ImageRecord b = store_->find("img-b:1").value();
  ASSERT_EQ(a.layers[0].diff_id, b.layers[0].diff_id);  // the shared base
  auto freed = store_->removeImage(a.name);
  ASSERT_TRUE(freed) << freed.error().message();
  EXPECT_GE(*freed, 2 * 2 * kMiB);  // its own layer's blob and unpacked file
  EXPECT_FALSE(fs::exists(store_->content().path(a.layers[1].digest)));
  EXPECT_FALSE(fs::exists(store_->lowerDirs(a)[0]));  // its own layer
  EXPECT_FALSE(fs::exists(store_->content().path(a.config_digest)));
  EXPECT_TRUE(fs::exists(store_->content().path(b.layers[0].digest)));
  for (const auto& dir : store_->lowerDirs(b)) {
    EXPECT_TRUE(fs::exists(dir)) << dir;
  }
  EXPECT_FALSE(store_->find("img-a:1"));
  auto missing = store_->removeImage(a.name);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "remove image `docker.io/library/img-a:1`: no such image");
}

TEST_F(ImageGcTest, FreeSpaceForEvictionTakesLeastRecentlyUsedUntilEnough) {
  import("a");
  import("b");
  import("c");
  ASSERT_TRUE(store_->touch(full("a"), later_ - 30));
  ASSERT_TRUE(store_->touch(full("b"), later_ - 20));
  ASSERT_TRUE(store_->touch(full("c"), later_ - 10));
  ImageGarbageCollector gc(*store_, options(du(store_->root()) * 2));
  auto freed = gc.freeSpace(kMiB, {"img-a:1"}, later_);
  ASSERT_TRUE(freed) << freed.error().message();
  EXPECT_GE(*freed, kMiB);
  EXPECT_EQ(names(), (std::vector<std::string>{full("a"), full("c")}));
  EXPECT_EQ(gc.freeSpace(0, {}, later_).value(), 0);
}

}  // namespace
}  // namespace kernelet::images
