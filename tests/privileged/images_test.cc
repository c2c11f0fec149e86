// The image store with the fixture images, in the test VM: import, unpack
// (whiteouts need root), overlay rootfs, and corrupt input refused.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "images/digest.h"
#include "images/image_config.h"
#include "images/image_store.h"
#include "images/rootfs.h"
#include "support/privileged.h"

namespace kernelet::images {
namespace {

namespace fs = std::filesystem;

class ImagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    char tmpl[] = "/tmp/kernelet-imgstore.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = ImageStore::open(dir_ + "/store");
    ASSERT_TRUE(s) << s.error().message();
    store_.emplace(std::move(*s));
  }
  void TearDown() override {
    if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }
  std::string fixture(const char* name) { return std::string(KERNELET_FIXTURES) + "/oci/" + name; }
  std::string dir_;
  std::optional<ImageStore> store_;
};

TEST_F(ImagesTest, ImportUnpacksAndTheOverlayShowsWhiteouts) {
  auto imported = store_->importLayout(fixture("layered"));
  ASSERT_TRUE(imported) << imported.error().message();
  ASSERT_EQ(imported->size(), 1u);
  const ImageRecord& img = (*imported)[0];
  EXPECT_EQ(img.name, "fixtures.kernelet.test/layered:latest");
  EXPECT_EQ(img.layers.size(), 2u);
  // The digest the fixture build printed.
  std::ifstream digests(std::string(KERNELET_FIXTURES) + "/digests.txt");
  std::string name, digest, want;
  while (digests >> name >> digest) {
    if (name == "layered") {
      want = digest;
    }
  }
  EXPECT_EQ(img.manifest_digest, want);

  auto rootfs = Rootfs::mount(store_->lowerDirs(img), dir_ + "/c1");
  ASSERT_TRUE(rootfs) << rootfs.error().message();
  std::string root = rootfs->path();
  EXPECT_TRUE(fs::exists(root + "/bin/busybox"));
  EXPECT_TRUE(fs::exists(root + "/etc/fixture-upper"));
  EXPECT_FALSE(fs::exists(root + "/etc/fixture-lower")) << "the whiteout did not hide it";
  std::vector<std::string> data;
  for (const auto& e : fs::directory_iterator(root + "/opt/data")) {
    data.push_back(e.path().filename());
  }
  EXPECT_EQ(data, std::vector<std::string>{"c"}) << "the opaque directory did not hide a and b";
  // Writes land in the container's upper dir, not in the shared layers.
  std::ofstream(root + "/etc/written") << "x";
  for (const auto& l : store_->lowerDirs(img)) {
    EXPECT_FALSE(fs::exists(l + "/etc/written"));
  }
  ASSERT_TRUE(rootfs->remove());
  EXPECT_FALSE(fs::exists(dir_ + "/c1"));

  auto config = parseImageConfig(store_->configJson(img).value(), img.config_digest);
  ASSERT_TRUE(config);
  EXPECT_EQ(config->cmd, std::vector<std::string>{"sh"});
}

TEST_F(ImagesTest, ImportFromATarAndFindByShortName) {
  std::string tar = dir_ + "/busybox.tar";
  ASSERT_EQ(std::system(("tar -C " + fixture("busybox") + " -cf " + tar + " .").c_str()), 0);
  auto imported = store_->importLayout(tar, "busybox:fixture");
  ASSERT_TRUE(imported) << imported.error().message();
  auto found = store_->find("busybox:fixture");
  ASSERT_TRUE(found) << found.error().message();
  EXPECT_EQ(found->name, "docker.io/library/busybox:fixture");
  EXPECT_TRUE(store_->find(found->config_digest));
  // Importing again changes nothing and unpacks nothing twice.
  ASSERT_TRUE(store_->importLayout(tar, "busybox:fixture"));
  EXPECT_EQ(store_->list()->size(), 1u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ + "/store/layers"), fs::directory_iterator()),
            1);
  // Removing it collects its blobs and layer.
  ASSERT_TRUE(store_->remove("busybox:fixture"));
  EXPECT_TRUE(fs::is_empty(dir_ + "/store/layers"));
  EXPECT_TRUE(fs::is_empty(dir_ + "/store/content/blobs/sha256"));
  EXPECT_FALSE(store_->find("busybox:fixture"));
}

TEST_F(ImagesTest, ACorruptBlobIsRefusedAndNothingIsStored) {
  std::string copy = dir_ + "/corrupt";
  fs::copy(fixture("layered"), copy, fs::copy_options::recursive);
  // Flip a byte in the largest blob (a layer).
  std::string victim;
  uintmax_t size = 0;
  for (const auto& e : fs::directory_iterator(copy + "/blobs/sha256")) {
    if (e.file_size() > size) {
      size = e.file_size();
      victim = e.path();
    }
  }
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.put('\x42');
  }
  auto r = store_->importLayout(copy);
  ASSERT_FALSE(r);
  std::string hex = fs::path(victim).filename();
  EXPECT_NE(r.error().message().find("verify blob `sha256:" + hex + "`: content has digest"),
            std::string::npos)
      << r.error().message();
  EXPECT_FALSE(store_->content().has("sha256:" + hex));
  EXPECT_TRUE(store_->list()->empty());
  EXPECT_TRUE(fs::is_empty(dir_ + "/store/content/ingest"));
}

TEST_F(ImagesTest, AMultiPlatformIndexYieldsItsLinuxAmd64Image) {
  std::string copy = dir_ + "/multi";
  fs::copy(fixture("busybox"), copy, fs::copy_options::recursive);
  std::ifstream in(copy + "/index.json");
  std::string top((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = top.find("sha256:");
  std::string amd64 = top.substr(at, 71);
  std::string size = top.substr(top.find("\"size\":") + 7);
  size = size.substr(0, size.find_first_of(",}"));
  auto index_for = [&](const std::string& platforms) {
    std::string body =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" +
        platforms + "]}";
    std::string digest = sha256Of(body);
    std::ofstream(copy + "/blobs/sha256/" + digest.substr(7)) << body;
    std::ofstream(copy + "/index.json")
        << R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":")"
        << digest << R"(","size":)" << body.size()
        << R"(,"annotations":{"org.opencontainers.image.ref.name":"multi:1"}}]})";
    return digest;
  };
  std::string arm =
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
      std::string(64, '0') + R"(","size":1,"platform":{"architecture":"arm64","os":"linux"}})";
  std::string x86 = R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                    amd64 + R"(","size":)" + size +
                    R"(,"platform":{"architecture":"amd64","os":"linux"}})";
  index_for(arm + "," + x86);
  auto r = store_->importLayout(copy);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)[0].name, "docker.io/library/multi:1");
  EXPECT_EQ(store_->find("multi:1")->layers.size(), 1u);

  std::string only_arm = index_for(arm);
  auto none = store_->importLayout(copy);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(), "import image `docker.io/library/multi:1`: the index " +
                                        only_arm + " has no linux/amd64 image");
}

TEST_F(ImagesTest, AMissingAnnotationNeedsAName) {
  std::string copy = dir_ + "/noname";
  fs::copy(fixture("busybox"), copy, fs::copy_options::recursive);
  std::ifstream in(copy + "/index.json");
  std::string index((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  index.replace(index.find("\"annotations\""), std::string::npos, "\"x\":1}]}");
  std::ofstream(copy + "/index.json") << index;
  auto r = store_->importLayout(copy);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "import image layout `" + copy +
                "`: a manifest has no org.opencontainers.image.ref.name annotation; pass --name");
  EXPECT_TRUE(store_->importLayout(copy, "named:1"));
}

}  // namespace
}  // namespace kernelet::images
