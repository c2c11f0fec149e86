// Images, registries and their answers are outside input: a document of the
// wrong shape is an error naming it and the JSON path, never a crash.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "images/digest.h"
#include "images/image_config.h"
#include "images/image_store.h"
#include "images/registry.h"
#include "isolation/oci_state.h"

namespace kernelet::images {
namespace {

namespace fs = std::filesystem;

class HostileLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kernelet-hostile.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/layout/blobs/sha256");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }
  // Stores a blob in the layout; returns its digest.
  std::string blob(const std::string& text) {
    std::string d = sha256Of(text);
    write(dir_ + "/layout/blobs/sha256/" + digestHex(d), text);
    return d;
  }
  // An index.json naming one manifest (by digest) as fixtures.kernelet.test/x.
  void index(const std::string& manifest_digest) {
    write(
        dir_ + "/layout/index.json",
        R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
            manifest_digest +
            R"(","size":1,"annotations":{"org.opencontainers.image.ref.name":"fixtures.kernelet.test/x:1"}}]})");
  }
  std::string importError() {
    auto store = ImageStore::open(dir_ + "/store");
    EXPECT_TRUE(store);
    auto r = store->importLayout(dir_ + "/layout");
    EXPECT_FALSE(r) << "imported a hostile layout";
    return r ? "" : r.error().message();
  }
  std::string dir_;
};

TEST_F(HostileLayout, IndexEntryOfTheWrongType) {
  write(dir_ + "/layout/index.json", R"({"manifests":[1]})");
  EXPECT_EQ(importError(),
            "decode `" + dir_ + "/layout/index.json`: manifests[0]: must be an object");
}

TEST_F(HostileLayout, IndexManifestsNotAnArray) {
  write(dir_ + "/layout/index.json", R"({"manifests":{"a":1}})");
  EXPECT_EQ(importError(), "decode `" + dir_ + "/layout/index.json`: manifests: must be an array");
}

TEST_F(HostileLayout, AnnotationOfTheWrongType) {
  write(dir_ + "/layout/index.json",
        R"({"manifests":[{"digest":"sha256:)" + std::string(64, 'a') +
            R"(","annotations":{"org.opencontainers.image.ref.name":7}}]})");
  EXPECT_EQ(importError(),
            "decode `" + dir_ +
                "/layout/index.json`: manifests[0].annotations.org.opencontainers.image.ref.name: "
                "must be a string");
}

TEST_F(HostileLayout, ManifestLayersNotAnArray) {
  std::string config = blob(R"({"rootfs":{"type":"layers","diff_ids":[]}})");
  std::string manifest =
      blob(R"({"schemaVersion":2,"config":{"digest":")" + config + R"(","size":40},"layers":{}})");
  index(manifest);
  EXPECT_EQ(importError(), "decode `manifest " + manifest + "`: layers: must be an array");
}

TEST_F(HostileLayout, ManifestConfigNotAnObject) {
  std::string manifest = blob(R"({"schemaVersion":2,"config":[],"layers":[]})");
  index(manifest);
  EXPECT_EQ(importError(), "decode `manifest " + manifest + "`: config: must be an object");
}

TEST_F(HostileLayout, ConfigDiffIdOfTheWrongType) {
  std::string config_text = R"({"rootfs":{"type":"layers","diff_ids":[1]}})";
  std::string config = blob(config_text);
  std::string manifest =
      blob(R"({"schemaVersion":2,"config":{"digest":")" + config + R"(","size":)" +
           std::to_string(config_text.size()) + R"(},"layers":[{"digest":"sha256:)" +
           std::string(64, 'b') + R"(","size":"12"}]})");
  index(manifest);
  EXPECT_EQ(importError(), "decode `config " + config + "`: rootfs.diff_ids[0]: must be a string");
}

TEST_F(HostileLayout, IndexPlatformOfTheWrongType) {
  std::string inner = blob(R"({"manifests":[{"digest":"x","platform":"linux/amd64"}]})");
  index(inner);
  EXPECT_EQ(importError(),
            "decode `manifest " + inner + "`: manifests[0].platform: must be an object");
}

TEST_F(HostileLayout, DeepNestingIsRefused) {
  write(dir_ + "/layout/index.json",
        R"({"manifests":)" + std::string(100000, '[') + std::string(100000, ']') + "}");
  EXPECT_NE(importError().find("nested deeper than 512 levels"), std::string::npos);
}

TEST_F(HostileLayout, ImageListOfTheWrongShape) {
  auto store = ImageStore::open(dir_ + "/store");
  ASSERT_TRUE(store);
  write(dir_ + "/store/images.json", R"([{"name":"a","manifest":"m","config":"c","size":"big"}])");
  auto all = store->list();
  ASSERT_FALSE(all);
  EXPECT_EQ(all.error().message(),
            "read image list `" + dir_ + "/store/images.json`: [0].size: must be an integer");
}

TEST(HostileConfig, ImageConfigFieldsOfTheWrongType) {
  auto c = parseImageConfig(R"({"config":{"Entrypoint":"sh"}})", "config sha256:x");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(),
            "parse image config `config sha256:x`: config.Entrypoint: must be an array");
  c = parseImageConfig(R"({"config":{"Env":["A=1", 2]}})", "c");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), "parse image config `c`: config.Env[1]: must be a string");
  c = parseImageConfig(R"({"config":[]})", "c");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), "parse image config `c`: config: must be an object");
  c = parseImageConfig(R"({"config":{"User":5}})", "c");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), "parse image config `c`: config.User: must be a string");
  c = parseImageConfig(R"({"config":{"Entrypoint":null,"Cmd":["sh"]}})", "c");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->cmd, std::vector<std::string>{"sh"});
}

TEST_F(HostileLayout, RegistryAuthFileOfTheWrongShape) {
  std::string path = dir_ + "/config.json";
  write(path, R"({"auths":{"registry.example":{"username":1,"password":"p"}}})");
  auto r = loadDockerConfig(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "parse registry auth file `" + path +
                                     "`: auths.registry.example.username: must be a string");
  write(path, R"({"auths":{"registry.example":{"auth":"!!"}}})");
  r = loadDockerConfig(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "parse registry auth file `" + path +
                                     "`: auths.registry.example.auth: expected base64 of "
                                     "user:password");
  write(path, R"({"auths":[]})");
  r = loadDockerConfig(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "parse registry auth file `" + path + "`: auths: must be an object");
}

TEST(HostileState, OciStateFileOfTheWrongShape) {
  using isolation::parseState;
  auto s = parseState(R"({"id":"c1","pid":"12"})", "/run/kernelet/oci/c1/state.json");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(),
            "read state `/run/kernelet/oci/c1/state.json`: pid: must be an integer");
  s = parseState(R"({"id":"c1","pid":12,"annotations":{"a":1}})", "st");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "read state `st`: annotations.a: must be a string");
  s = parseState(R"({"id":"c1","pid":12,"startTime":-4})", "st");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "read state `st`: startTime: must not be negative");
  s = parseState(R"({"id":"c1","pid":-1})", "st");
  ASSERT_FALSE(s);
  s = parseState("[]", "st");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "read state `st`: must be an object");
  s = parseState(R"({"id":"c1","pid":12,"startTime":99,"bundle":"/b"})", "st");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->pid, 12);
  EXPECT_EQ(s->start_time, 99u);
}

}  // namespace
}  // namespace kernelet::images
