#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "images/content_store.h"
#include "images/digest.h"
#include "images/image_config.h"
#include "images/policy.h"
#include "images/reference.h"
#include "images/unpack.h"
#include "support/layer_builder.h"

namespace kernelet::images {
namespace {

namespace fs = std::filesystem;
using kernelet::testing::TarEntry;
using kernelet::testing::writeLayer;

TEST(Reference, NormalizesAsDockerAndContainerdDo) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"busybox", "docker.io/library/busybox:latest"},
      {"busybox:1.36", "docker.io/library/busybox:1.36"},
      {"library/busybox", "docker.io/library/busybox:latest"},
      {"docker.io/busybox", "docker.io/library/busybox:latest"},
      {"index.docker.io/library/busybox", "docker.io/library/busybox:latest"},
      {"team/app", "docker.io/team/app:latest"},
      {"localhost/app", "localhost/app:latest"},
      {"localhost:5000/team/app:v1", "localhost:5000/team/app:v1"},
      {"quay.io/a/b-c_d.e:1.0-rc", "quay.io/a/b-c_d.e:1.0-rc"},
      {"registry.k8s.io/pause@sha256:"
       "7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097",
       "registry.k8s.io/pause@sha256:"
       "7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097"},
  };
  for (const auto& c : cases) {
    auto r = parseReference(c.in);
    ASSERT_TRUE(r) << c.in << ": " << r.error().message();
    EXPECT_EQ(r->str(), c.out) << c.in;
  }
  auto p = parseReference("localhost:5000/team/app:v1");
  EXPECT_EQ(p->domain, "localhost:5000");
  EXPECT_EQ(p->repository, "team/app");
  EXPECT_EQ(p->tag, "v1");
}

TEST(Reference, BadOnesSayWhatIsWrong) {
  EXPECT_EQ(parseReference("").error().message(), "parse image reference: empty");
  struct Case {
    const char* in;
    const char* why;
  } cases[] = {
      {"Busybox", "repository name must be lowercase"},
      {"busybox:", "invalid tag \"\""},
      {"busybox:-x", "invalid tag \"-x\""},
      {"busybox@sha256:abc", "invalid digest \"sha256:abc\""},
      {"a//b", "invalid repository name component \"\""},
      {"quay.io/", "no repository name"},
      {"ok__name/x-", "invalid repository name component \"x-\""},
  };
  for (const auto& c : cases) {
    auto r = parseReference(c.in);
    ASSERT_FALSE(r) << c.in;
    EXPECT_EQ(r.error().message(), "parse image reference `" + std::string(c.in) + "`: " + c.why);
  }
}

// Docker's 255-character limit is on the normalized name, docker.io/library/
// included: a name that fits only as typed would print as a reference that no
// longer parses (the image_reference fuzzer's round trip found one).
TEST(Reference, NameLimitCountsTheNormalizedName) {
  const std::string library = "docker.io/library/";
  const std::string fits(255 - library.size(), 'a');
  auto r = parseReference(fits);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->name(), library + fits);
  auto again = parseReference(r->str());
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->str(), r->str());

  const std::string why = ": repository name must not be more than 255 characters";
  for (const std::string& in : {fits + "b", fits + "b:v1", "docker." + std::string(300, 'x'),
                                "team/" + std::string(250, 'y')}) {
    auto bad = parseReference(in);
    ASSERT_FALSE(bad) << in << " -> " << bad->str();
    EXPECT_EQ(bad.error().message(), "parse image reference `" + in + "`" + why);
  }
  // A registry name counts too, and index.docker.io counts as docker.io.
  EXPECT_TRUE(parseReference("quay.io/" + std::string(255 - 8, 'q')));
  EXPECT_FALSE(parseReference("quay.io/" + std::string(255 - 7, 'q')));
  EXPECT_TRUE(parseReference("index.docker.io/" + library.substr(10) + fits + ":v1"));
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kernelet-images.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

using ContentStoreTest = TempDir;

TEST_F(ContentStoreTest, OnlyVerifiedBlobsAreStored) {
  auto store = ContentStore::open(dir_);
  ASSERT_TRUE(store);
  std::string data = "hello";
  std::string good = sha256Of(data);
  std::string other = sha256Of("other");
  auto bad = store->put(other, data);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "verify blob `" + other + "`: content has digest " + good);
  EXPECT_FALSE(store->has(other));
  EXPECT_TRUE(fs::is_empty(dir_ + "/ingest"));  // no half blob left behind
  auto size = store->put(good, data, 6);
  ASSERT_FALSE(size);
  EXPECT_EQ(size.error().message(), "verify blob `" + good + "`: size 5, expected 6");
  ASSERT_TRUE(store->put(good, data, 5));
  EXPECT_TRUE(store->has(good));
  EXPECT_EQ(store->read(good).value(), "hello");
  EXPECT_FALSE(store->put("sha256:nothex", data));
}

using UnpackTest = TempDir;

TEST_F(UnpackTest, EscapingEntriesAreRefusedAndNothingIsWrittenOutside) {
  struct Case {
    std::vector<TarEntry> entries;
    std::string error;
  } cases[] = {
      {{{"../../etc/passwd", 'f', "x"}}, "`../../etc/passwd`: path leaves the layer"},
      {{{"a/../../escape", 'f', "x"}}, "`a/../../escape`: path leaves the layer"},
      {{{"/etc/passwd", 'f', "x"}}, "`/etc/passwd`: absolute path refused"},
      {{{"link", 'l', "../.."}, {"link/escape", 'f', "x"}}, "`link/escape`: "},
      {{{"link", 'l', "/"}, {"link/tmp/escape", 'f', "x"}}, "`link/tmp/escape`: "},
      {{{"evil", 'h', "../outside"}}, "`evil`: hard link to ../outside leaves the layer"},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::string layer = dir_ + "/layer" + std::to_string(i) + ".tar.gz";
    std::string dest = dir_ + "/box/inner" + std::to_string(i++);
    fs::create_directories(dest);
    ASSERT_TRUE(writeLayer(layer, c.entries));
    auto r = unpackLayer(layer, dest, "sha256:test");
    ASSERT_FALSE(r) << c.error;
    EXPECT_NE(r.error().message().find("unpack layer sha256:test " + c.error), std::string::npos)
        << r.error().message();
  }
  // Nothing landed beside or above the destinations.
  for (const char* p : {"/box/escape", "/escape", "/box/etc", "/etc/passwd", "/outside"}) {
    EXPECT_FALSE(fs::exists(dir_ + p)) << p;
  }
  EXPECT_FALSE(fs::exists("/tmp/escape"));
}

TEST_F(UnpackTest, DiffIdIsTheUncompressedDigestAndMismatchLeavesNothing) {
  std::string gz = dir_ + "/l.tar.gz", plain = dir_ + "/l.tar";
  std::vector<TarEntry> entries = {{"dir", 'd', "", 0755}, {"dir/file", 'f', "content"}};
  ASSERT_TRUE(writeLayer(gz, entries, kernelet::testing::Compression::kGzip));
  ASSERT_TRUE(writeLayer(plain, entries, kernelet::testing::Compression::kNone));
  std::ifstream in(plain, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string diff_id = sha256Of(bytes);

  auto r = unpackLayerAtomically(gz, dir_ + "/ok", "l", diff_id);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->diff_id, diff_id);
  EXPECT_EQ(std::ifstream(dir_ + "/ok/dir/file").rdbuf() != nullptr, true);
  auto plain_r = unpackLayerAtomically(plain, dir_ + "/ok2", "l", diff_id);
  ASSERT_TRUE(plain_r) << plain_r.error().message();

  auto wrong = unpackLayerAtomically(gz, dir_ + "/bad", "l", sha256Of("x"));
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("is not the diff_id"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ + "/bad"));
  EXPECT_FALSE(fs::exists(dir_ + "/bad.tmp"));
}

TEST_F(UnpackTest, ZstdLayersKeepOwnersModesHardLinksAndDevices) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root: owners and device nodes";
  }
  std::string zst = dir_ + "/l.tar.zst";
  ASSERT_TRUE(writeLayer(zst,
                         {{"bin", 'd', "", 0755},
                          {"bin/tool", 'f', "#!/bin/sh\n", 04755},
                          {"bin/alias", 'h', "bin/tool"},
                          {"dev", 'd', "", 0755},
                          {"dev/null", 'c', "1:3", 0666}},
                         kernelet::testing::Compression::kZstd));
  auto r = unpackLayerAtomically(zst, dir_ + "/z", "zstd", "");
  ASSERT_TRUE(r) << r.error().message();
  struct stat tool {
  }, alias{}, null{};
  ASSERT_EQ(::stat((dir_ + "/z/bin/tool").c_str(), &tool), 0);
  ASSERT_EQ(::stat((dir_ + "/z/bin/alias").c_str(), &alias), 0);
  ASSERT_EQ(::stat((dir_ + "/z/dev/null").c_str(), &null), 0);
  EXPECT_EQ(tool.st_mode & 07777, 04755u);  // setuid kept
  EXPECT_EQ(tool.st_ino, alias.st_ino);     // one file, two names
  EXPECT_TRUE(S_ISCHR(null.st_mode));
  EXPECT_EQ(major(null.st_rdev), 1u);
  EXPECT_EQ(minor(null.st_rdev), 3u);
}

TEST_F(UnpackTest, TruncatedGzipIsAnErrorAndLeavesNothing) {
  std::string gz = dir_ + "/l.tar.gz";
  std::string big(200000, 'z');
  for (size_t i = 0; i < big.size(); i++) {
    big[i] = static_cast<char>('a' + (i * 7919) % 26);
  }
  ASSERT_TRUE(writeLayer(gz, {{"big", 'f', big}}));
  fs::resize_file(gz, fs::file_size(gz) / 2);
  auto r = unpackLayerAtomically(gz, dir_ + "/t", "sha256:trunc", "");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("unpack layer sha256:trunc"), std::string::npos)
      << r.error().message();
  EXPECT_FALSE(fs::exists(dir_ + "/t"));
  EXPECT_FALSE(fs::exists(dir_ + "/t.tmp"));
}

TEST(ImageConfig, CommandAndArgsMergeAsKubernetesDefines) {
  ImageConfig img{.entrypoint = {"/ep"}, .cmd = {"--default"}};
  using V = std::vector<std::string>;
  EXPECT_EQ(containerArgv(img, {}, {}, "c").value(), (V{"/ep", "--default"}));
  EXPECT_EQ(containerArgv(img, {"/cmd"}, {}, "c").value(), (V{"/cmd"}));
  EXPECT_EQ(containerArgv(img, {}, {"--x"}, "c").value(), (V{"/ep", "--x"}));
  EXPECT_EQ(containerArgv(img, {"/cmd"}, {"--x"}, "c").value(), (V{"/cmd", "--x"}));
  auto none = containerArgv(ImageConfig{}, {}, {}, "app");
  ASSERT_FALSE(none);
  EXPECT_EQ(
      none.error().message(),
      "container `app`: no command: neither the pod nor the image's Entrypoint/Cmd gives one");
}

TEST(ImageConfig, ParsesTheConfigSection) {
  auto c = parseImageConfig(
      R"({"architecture":"amd64","config":{"Entrypoint":["/bin/sh"],"Cmd":["-c","x"],
      "Env":["PATH=/bin"],"WorkingDir":"/w","User":"app","ExposedPorts":{"80/tcp":{}},
      "StopSignal":"SIGQUIT"}})",
      "cfg");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->entrypoint, std::vector<std::string>{"/bin/sh"});
  EXPECT_EQ(c->working_dir, "/w");
  EXPECT_EQ(c->user, "app");
  EXPECT_EQ(c->exposed_ports, std::vector<std::string>{"80/tcp"});
  EXPECT_EQ(c->stop_signal, "SIGQUIT");
  EXPECT_FALSE(parseImageConfig("[", "cfg"));
}

using UserTest = TempDir;

TEST_F(UserTest, ResolvedThroughTheImagesPasswdAndGroup) {
  fs::create_directories(dir_ + "/etc");
  std::ofstream(dir_ + "/etc/passwd")
      << "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
  std::ofstream(dir_ + "/etc/group")
      << "root:x:0:\napp:x:1000:\nextra:x:2000:app,other\nweb:x:33:\n";
  auto app = resolveUser(dir_, "app");
  ASSERT_TRUE(app);
  EXPECT_EQ(app->uid, 1000u);
  EXPECT_EQ(app->gid, 1000u);
  EXPECT_EQ(app->additional_gids, (std::vector<gid_t>{1000, 2000}));
  EXPECT_EQ(app->home, "/home/app");
  auto named = resolveUser(dir_, "app:web");
  ASSERT_TRUE(named);
  EXPECT_EQ(named->gid, 33u);
  auto numeric = resolveUser(dir_, "4242:4343");
  ASSERT_TRUE(numeric);
  EXPECT_EQ(numeric->uid, 4242u);
  EXPECT_EQ(numeric->gid, 4343u);
  EXPECT_EQ(resolveUser(dir_, "")->uid, 0u);
  auto missing = resolveUser(dir_, "nobody-here");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            "resolve user `nobody-here`: no such user in " + dir_ + "/etc/passwd");
  EXPECT_FALSE(resolveUser(dir_, "app:nogroup"));
}

}  // namespace
}  // namespace kernelet::images

namespace kernelet::images {
namespace {

TEST(PullPolicy, DefaultsAsTheKubeletSetsThem) {
  EXPECT_EQ(pullPolicy("", "busybox").value(), PullPolicy::kAlways);
  EXPECT_EQ(pullPolicy("", "busybox:latest").value(), PullPolicy::kAlways);
  EXPECT_EQ(pullPolicy("", "busybox:1.36").value(), PullPolicy::kIfNotPresent);
  EXPECT_EQ(pullPolicy("", "busybox@sha256:" + std::string(64, 'a')).value(),
            PullPolicy::kIfNotPresent);
  EXPECT_EQ(pullPolicy("Never", "busybox").value(), PullPolicy::kNever);
  EXPECT_EQ(pullPolicy("sometimes", "busybox").error().message(),
            "image pull policy `sometimes`: must be Always, IfNotPresent or Never");
  EXPECT_EQ(decidePull(PullPolicy::kNever, false), PullDecision::kNeverPullAbsent);
  EXPECT_EQ(decidePull(PullPolicy::kIfNotPresent, true), PullDecision::kUsePresent);
  EXPECT_EQ(decidePull(PullPolicy::kAlways, true), PullDecision::kPull);
}

}  // namespace
}  // namespace kernelet::images
