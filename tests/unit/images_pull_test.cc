// Registry pull against a real registry (Debian's docker-registry) on a
// loopback port with TLS and Basic auth: no root needed, runs on the host.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "images/digest.h"
#include "images/image_store.h"
#include "support/registry_server.h"

namespace kernelet::images {
namespace {

namespace fs = std::filesystem;

int countMatches(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    n++;
  }
  return n;
}

// The registry writes its access log after the response: wait (a little) for
// the line that proves a request was logged before counting.
std::string logAfter(kernelet::testing::RegistryServer& r, size_t from, const std::string& needle) {
  std::string log;
  for (int i = 0; i < 100; i++) {
    log = r.log().substr(from);
    if (log.find(needle) != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return log;
}

class PullTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      return;  // SetUp() skips every test
    }
    char tmpl[] = "/tmp/kernelet-registry.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = new std::string(tmpl);
    auto r = kernelet::testing::RegistryServer::start(*dir_ + "/registry");
    ASSERT_TRUE(r) << r.error().message();
    registry_ = new kernelet::testing::RegistryServer(std::move(*r));
    for (const char* name : {"busybox", "layered"}) {
      auto pushed = registry_->push(std::string(KERNELET_FIXTURES) + "/oci/" + name,
                                    std::string("fixtures/") + name, "v1");
      ASSERT_TRUE(pushed) << pushed.error().message();
    }
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
    if (dir_ != nullptr) {
      fs::remove_all(*dir_);
      delete dir_;
    }
  }
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root: unpacking layers with whiteouts and owners";
    }
    ASSERT_NE(registry_, nullptr);
    store_dir_ = *dir_ + "/store" + std::to_string(n_++);
    auto s = ImageStore::open(store_dir_);
    ASSERT_TRUE(s);
    store_.emplace(std::move(*s));
    options_.tls.ca_file = registry_->caFile();
    options_.docker_config = registry_->authFile();
  }
  std::string ref(const std::string& name) { return registry_->host() + "/fixtures/" + name; }

  static inline std::string* dir_ = nullptr;
  static inline kernelet::testing::RegistryServer* registry_ = nullptr;
  static inline int n_ = 0;
  std::string store_dir_;
  std::optional<ImageStore> store_;
  RegistryOptions options_;
};

TEST_F(PullTest, ByTagThenByDigestWithBasicAuth) {
  auto img = store_->pull(ref("layered:v1"), options_);
  ASSERT_TRUE(img) << img.error().message();
  EXPECT_EQ(img->name, ref("layered:v1"));
  EXPECT_EQ(img->layers.size(), 2u);
  for (const auto& dir : store_->lowerDirs(*img)) {
    EXPECT_TRUE(fs::is_directory(dir)) << dir;
  }
  auto by_digest = store_->pull(ref("layered@") + img->manifest_digest, options_);
  ASSERT_TRUE(by_digest) << by_digest.error().message();
  EXPECT_EQ(by_digest->config_digest, img->config_digest);
}

TEST_F(PullTest, APresentImageCostsOnlyTheManifest) {
  ASSERT_TRUE(store_->pull(ref("busybox:v1"), options_));
  size_t before = registry_->log().size();
  ASSERT_TRUE(store_->pull(ref("busybox:v1"), options_));
  std::string after = logAfter(*registry_, before, "/manifests/v1 HTTP/1.1\" 200");
  EXPECT_EQ(countMatches(after, "/blobs/sha256:"), 0) << after;
  EXPECT_GE(countMatches(after, "/manifests/v1"), 1) << after;
}

TEST_F(PullTest, ConcurrentPullsOfOneImageDownloadOnce) {
  size_t before = registry_->log().size();
  std::vector<std::thread> threads;
  std::vector<Result<ImageRecord>> results(4, makeError("", "", "not run"));
  for (int i = 0; i < 4; i++) {
    threads.emplace_back([&, i] { results[i] = store_->pull(ref("layered:v1"), options_); });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (auto& r : results) {
    ASSERT_TRUE(r) << r.error().message();
  }
  // Each blob once (the 401 challenges only add unauthenticated tries).
  std::string layer = results[0]->layers[1].digest;
  std::string after = logAfter(*registry_, before, "/blobs/" + layer + " HTTP/1.1\" 200");
  int gets = 0;
  std::istringstream lines(after);
  for (std::string l; std::getline(lines, l);) {
    if (l.find("/blobs/" + layer) != std::string::npos && l.find("\" 200 ") != std::string::npos) {
      gets++;
    }
  }
  EXPECT_EQ(gets, 1) << after;
}

TEST_F(PullTest, MissingCredentialsAreAClearError) {
  options_.docker_config.clear();
  auto r = store_->pull(ref("busybox:v1"), options_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "authenticate to `" + registry_->host() +
                "`: the registry wants credentials (Basic) and none were given for this host");
}

TEST_F(PullTest, AWrongCaFailsTheHandshake) {
  options_.tls.ca_file = "/etc/ssl/certs/ca-certificates.crt";
  auto r = store_->pull(ref("busybox:v1"), options_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("TLS handshake with"), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("certificate"), std::string::npos) << r.error().message();
}

TEST_F(PullTest, UnknownImageOrTagSaysNotFound) {
  auto r = store_->pull(ref("busybox:nope"), options_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "pull `" + ref("busybox:nope") + "`: manifest not found in the registry");
}

TEST_F(PullTest, ACorruptedBlobIsRefusedAndNothingStored) {
  // Push a copy under another name, then damage its layer in the registry's storage.
  ASSERT_TRUE(
      registry_->push(std::string(KERNELET_FIXTURES) + "/oci/busybox", "fixtures/broken", "v1"));
  auto good = store_->pull(ref("broken:v1"), options_);
  ASSERT_TRUE(good);
  std::string layer = good->layers[0].digest;
  ASSERT_TRUE(store_->remove(ref("broken:v1")));
  std::string data = registry_->storage() + "/docker/registry/v2/blobs/sha256/" +
                     layer.substr(7, 2) + "/" + layer.substr(7) + "/data";
  ASSERT_TRUE(fs::exists(data));
  // The blob is shared with the other images of the registry: put the byte
  // back whatever happens, so the tests after this one see a sound registry.
  auto flip = [&](char value) {
    std::fstream f(data, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(1000);
    char old = static_cast<char>(f.get());
    f.seekp(1000);
    f.put(value);
    return old;
  };
  char original = flip(0);
  flip(static_cast<char>(original ^ 0x5a));  // surely different from what was there
  struct Restore {
    std::function<void()> fn;
    ~Restore() { fn(); }
  } restore{[&] { flip(original); }};
  auto bad = store_->pull(ref("broken:v1"), options_);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("verify blob `" + layer + "`: content has digest"),
            std::string::npos)
      << bad.error().message();
  EXPECT_FALSE(store_->content().has(layer));
  EXPECT_TRUE(fs::is_empty(store_dir_ + "/content/ingest"));
  EXPECT_FALSE(store_->find(ref("broken:v1")));
}

TEST_F(PullTest, BearerTokenFromTheRealmTheChallengeNames) {
  auto token_registry = kernelet::testing::RegistryServer::start(
      *dir_ + "/token-registry", kernelet::testing::RegistryServer::Auth::kToken);
  ASSERT_TRUE(token_registry) << token_registry.error().message();
  // It starts empty, and the push helper speaks Basic only: give it the
  // images of the Basic registry by copying that registry's storage.
  fs::copy(registry_->storage(), token_registry->storage(),
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  options_.tls.ca_file = token_registry->caFile();
  // Credentials for the token service, keyed by the registry's host.
  options_.docker_config = *dir_ + "/token-auth.json";
  std::ofstream(options_.docker_config)
      << R"({"auths":{")" << token_registry->host() << R"(":{"auth":"dXNlcjpzZWNyZXQ="}}})";
  std::string name = token_registry->host() + "/fixtures/busybox:v1";
  auto img = store_->pull(name, options_);
  ASSERT_TRUE(img) << img.error().message() << "\n" << token_registry->log();
  EXPECT_EQ(img->layers.size(), 1u);
  // Without credentials the token service refuses, and the error says where.
  options_.docker_config.clear();
  ASSERT_TRUE(store_->remove(name));
  auto denied = store_->pull(name, options_);
  ASSERT_FALSE(denied);
  EXPECT_NE(denied.error().message().find("get token from `http://127.0.0.1:"), std::string::npos)
      << denied.error().message();
  EXPECT_NE(denied.error().message().find("HTTP 401"), std::string::npos)
      << denied.error().message();
}

// A pod's pull secrets: every matching credential is tried in order until one
// works, and an anonymous pull is never tried once there are credentials.
TEST_F(PullTest, PodCredentialsAreTriedInOrderUntilOneWorks) {
  options_.docker_config.clear();
  options_.credentials = {{"user", "wrong"}, {"user", "secret"}};
  auto img = store_->pull(ref("busybox:v1"), options_);
  ASSERT_TRUE(img) << img.error().message();
  ASSERT_TRUE(store_->remove(ref("busybox:v1")));
  // All wrong: the kubelet's aggregate of each try's error, and no password in it.
  options_.credentials = {{"user", "wrong"}, {"other", "nope"}};
  auto denied = store_->pull(ref("busybox:v1"), options_);
  ASSERT_FALSE(denied);
  std::string one = "pull `" + ref("busybox:v1") + "`: access denied: HTTP 401";
  std::string msg = denied.error().message();
  EXPECT_TRUE(msg.starts_with("[" + one)) << msg;
  EXPECT_EQ(countMatches(msg, one), 2) << msg;
  EXPECT_EQ(msg.find("wrong"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("nope"), std::string::npos) << msg;
}

// The pod's credentials come before the node's auth file's.
TEST_F(PullTest, PodCredentialsComeBeforeTheNodes) {
  options_.docker_config = *dir_ + "/wrong-node-auth.json";
  std::ofstream(options_.docker_config)
      << R"({"auths":{")" << registry_->host() << R"(":{"username":"user","password":"bad"}}})";
  options_.credentials = {{"user", "secret"}};
  size_t before = registry_->log().size();
  auto img = store_->pull(ref("busybox:v1"), options_);
  ASSERT_TRUE(img) << img.error().message();
  // The node's wrong password was never needed: no 401 after the first challenge.
  std::string after = logAfter(*registry_, before, "/manifests/v1 HTTP/1.1\" 200");
  EXPECT_EQ(countMatches(after, "/manifests/v1 HTTP/1.1\" 401"), 1) << after;
}

// A pull without credentials that fails for want of them runs beside, not
// instead of, one with them: concurrent pods of one image each get their own.
TEST_F(PullTest, PullsWithOtherCredentialsAreNotShared) {
  options_.docker_config.clear();
  RegistryOptions with = options_;
  with.credentials = {{"user", "secret"}};
  std::vector<Result<ImageRecord>> results(6, makeError("", "", "not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; i++) {
    threads.emplace_back(
        [&, i] { results[i] = store_->pull(ref("layered:v1"), i % 2 == 0 ? options_ : with); });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (int i = 0; i < 6; i++) {
    if (i % 2 == 1) {
      EXPECT_TRUE(results[i]) << results[i].error().message();
    } else {
      // Anonymous: refused, even with the image in the store by then (its
      // manifest still needs credentials).
      ASSERT_FALSE(results[i]);
      EXPECT_NE(results[i].error().message().find("wants credentials"), std::string::npos)
          << results[i].error().message();
    }
  }
}

TEST_F(PullTest, BearerTokenWithThePodsCredentials) {
  auto token_registry = kernelet::testing::RegistryServer::start(
      *dir_ + "/token-registry-pod", kernelet::testing::RegistryServer::Auth::kToken);
  ASSERT_TRUE(token_registry) << token_registry.error().message();
  fs::copy(registry_->storage(), token_registry->storage(),
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  options_.tls.ca_file = token_registry->caFile();
  options_.docker_config.clear();
  options_.credentials = {{"user", "not-this"}, {"user", "secret"}};
  std::string name = token_registry->host() + "/fixtures/busybox:v1";
  auto img = store_->pull(name, options_);
  ASSERT_TRUE(img) << img.error().message() << "\n" << token_registry->log();
  EXPECT_EQ(img->layers.size(), 1u);
}

// Blobs often come from storage the registry redirects to; credentials must not
// follow them there. No root needed: no unpacking.
TEST(BlobRedirect, FollowedWithoutTheRegistrysCredentials) {
  char tmpl[] = "/tmp/kernelet-redirect.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string blob = "layer bytes";
  std::ofstream(dir + "/blob") << blob;
  // Two free ports in a row are likely enough on loopback in a test run.
  int port = 20000 + (::getpid() % 20000);
  std::ofstream(dir + "/docker.json")
      << R"({"auths":{"127.0.0.1:)" << port << R"(":{"auth":"dXNlcjpzZWNyZXQ="}}})";
  pid_t server = ::fork();
  if (server == 0) {
    ::execlp("python3", "python3", KERNELET_REDIRECT_SERVER, std::to_string(port).c_str(),
             (dir + "/blob").c_str(), (dir + "/storage.log").c_str(), nullptr);
    ::_exit(127);
  }
  auto ref = parseReference("127.0.0.1:" + std::to_string(port) + "/team/app:v1");
  ASSERT_TRUE(ref);
  RegistryOptions options{.docker_config = dir + "/docker.json", .plain_http = true};
  auto registry = Registry::open(*ref, options);
  ASSERT_TRUE(registry);
  auto store = ContentStore::open(dir + "/content");
  ASSERT_TRUE(store);
  Result<void> r = makeError("", "", "not tried");
  for (int i = 0; i < 100 && !r; i++) {  // until the servers listen
    r = registry->blob(sha256Of(blob), static_cast<int64_t>(blob.size()), *store);
    if (!r) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ::kill(server, SIGTERM);
  ::waitpid(server, nullptr, 0);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(store->read(sha256Of(blob)).value(), blob);
  std::ifstream log(dir + "/storage.log");
  std::stringstream all;
  all << log.rdbuf();
  std::string blob_path = "/v2/team/app/blobs/" + sha256Of(blob);
  EXPECT_NE(all.str().find("registry GET " + blob_path + " auth=none"), std::string::npos);
  EXPECT_NE(all.str().find("registry GET " + blob_path + " auth=Basic dXNlcjpzZWNyZXQ="),
            std::string::npos)
      << all.str();
  EXPECT_NE(all.str().find("storage GET /storage/blob?sig=x auth=none"), std::string::npos)
      << all.str();
  EXPECT_EQ(all.str().find("storage GET /storage/blob?sig=x auth=Basic"), std::string::npos)
      << all.str();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kernelet::images
