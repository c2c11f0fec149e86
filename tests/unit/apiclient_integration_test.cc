// The API client against the test API server on loopback: verbs and the
// Status errors, paging, keep-alive, authentication, TLS failures, Retry-After,
// and the reflector across watch breaks, a 410 and a server restart.

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "apiclient/api_client.h"
#include "apiclient/merge_patch.h"
#include "apiclient/reflector.h"
#include "support/api_server.h"

namespace kernelet::apiclient {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

std::string field(const std::string& json, const char* a, const char* b = nullptr) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember(a)) {
    return "";
  }
  const rapidjson::Value* v = &d[a];
  if (b != nullptr) {
    if (!v->IsObject() || !v->HasMember(b)) {
      return "";
    }
    v = &(*v)[b];
  }
  if (v->IsString()) {
    return v->GetString();
  }
  if (v->IsInt64()) {
    return std::to_string(v->GetInt64());
  }
  return "";
}

std::string pod(const std::string& name, const std::string& node = "node1") {
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
         R"(","labels":{"app":"x"}},"spec":{"nodeName":")" + node +
         R"(","containers":[{"name":"c","image":"busybox"}]}})";
}

class ApiClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/kernelet-api-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto s = testing::ApiServer::start(dir_, {.bookmark_seconds = 1});
    ASSERT_TRUE(s) << s.error().message();
    server_.emplace(std::move(*s));
    auto c = ApiClient::create(access("admin-token"));
    ASSERT_TRUE(c) << c.error().message();
    client_ = std::move(*c);
    net_.start();
  }
  void TearDown() override {
    net_.stop();
    server_.reset();
    fs::remove_all(dir_);
  }
  ClusterAccess access(const std::string& token) {
    ClusterAccess a;
    a.server = server_->url();
    a.ca_pem = *readCa();
    a.token = token;
    return a;
  }
  Result<std::string> readCa() {
    std::ifstream in(server_->caFile());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string dir_;
  std::optional<testing::ApiServer> server_;
  std::unique_ptr<ApiClient> client_;
  ApiLoop net_;  // the reflectors' network thread
};

const std::string kPods = resourcePath("v1", "pods", "default");

TEST_F(ApiClientTest, VerbsAndTheServersStatusErrors) {
  auto created = client_->create(kPods, pod("web"));
  ASSERT_TRUE(created) << created.error().str();
  std::string uid = field(*created, "metadata", "uid");
  EXPECT_FALSE(uid.empty());
  auto again = client_->create(kPods, pod("web"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, 409);
  EXPECT_EQ(again.error().reason, "AlreadyExists");
  EXPECT_EQ(again.error().message, "pods \"web\" already exists");
  auto missing = client_->get(kPods + "/nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().reason, "NotFound");
  EXPECT_NE(missing.error().str().find("GET /api/v1/namespaces/default/pods/nope: 404 NotFound"),
            std::string::npos)
      << missing.error().str();

  // PUT with a stale resourceVersion: Conflict.
  std::string stale = *created;
  auto patched =
      client_->patch(kPods + "/web", PatchType::kMerge, R"({"metadata":{"labels":{"app":"y"}}})");
  ASSERT_TRUE(patched) << patched.error().str();
  auto conflict = client_->update(kPods + "/web", stale);
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().reason, "Conflict");

  // The status subresource with a strategic merge patch and the uid guard.
  auto status = client_->patch(
      kPods + "/web/status", PatchType::kStrategicMerge,
      R"({"metadata":{"uid":")" + uid +
          R"("},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}})");
  ASSERT_TRUE(status) << status.error().str();
  EXPECT_EQ(field(*status, "status", "phase"), "Running");
  auto guarded = client_->patch(kPods + "/web/status", PatchType::kStrategicMerge,
                                R"({"metadata":{"uid":"other"},"status":{"phase":"Failed"}})");
  ASSERT_FALSE(guarded);
  EXPECT_EQ(guarded.error().code, 409);

  // Graceful deletion of a bound pod, then the kubelet's final DELETE.
  auto deleting = client_->remove(kPods + "/web");
  ASSERT_TRUE(deleting);
  EXPECT_FALSE(field(*deleting, "metadata", "deletionTimestamp").empty());
  EXPECT_EQ(field(*deleting, "metadata", "deletionGracePeriodSeconds"), "30");
  auto wrong_uid =
      client_->remove(kPods + "/web", {.grace_period_seconds = 0, .precondition_uid = "not-it"});
  ASSERT_FALSE(wrong_uid);
  EXPECT_EQ(wrong_uid.error().reason, "Conflict");
  ASSERT_TRUE(
      client_->remove(kPods + "/web", {.grace_period_seconds = 0, .precondition_uid = uid}));
  EXPECT_EQ(client_->get(kPods + "/web").error().code, 404);
}

TEST_F(ApiClientTest, ListsPageByPageOverOneKeptAliveConnection) {
  for (int i = 0; i < 7; i++) {
    ASSERT_TRUE(client_->create(kPods, pod("p" + std::to_string(i))));
  }
  ASSERT_TRUE(client_->create(kPods, pod("elsewhere", "node2")));
  size_t before = client_->requestCount();
  auto list = client_->list(resourcePath("v1", "pods"),
                            {.field_selector = "spec.nodeName=node1", .limit = 3});
  ASSERT_TRUE(list) << list.error().str();
  EXPECT_EQ(list->items.size(), 7u);
  EXPECT_EQ(list->kind, "PodList");
  EXPECT_FALSE(list->resource_version.empty());
  EXPECT_EQ(client_->requestCount() - before, 3u);  // 3 + 3 + 1
  auto labelled = client_->list(kPods, {.label_selector = "app in (x),!missing"});
  ASSERT_TRUE(labelled);
  EXPECT_EQ(labelled->items.size(), 8u);
  EXPECT_EQ(client_->pool().dials(), 1u);  // every request on one connection
}

TEST_F(ApiClientTest, AuthenticationFailuresAreReportedNotRetried) {
  auto bad = ApiClient::create(access("wrong-token"));
  ASSERT_TRUE(bad);
  auto r = (*bad)->get(kPods);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 401);
  EXPECT_EQ(r.error().reason, "Unauthorized");
  EXPECT_EQ((*bad)->requestCount(), 1u);
  auto reader = ApiClient::create(access("reader-token"));
  ASSERT_TRUE(reader);
  EXPECT_TRUE((*reader)->list(kPods));
  auto w = (*reader)->create(kPods, pod("x"));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().reason, "Forbidden");
  EXPECT_EQ(w.error().message,
            "pods is forbidden: User \"reader\" cannot create resource \"pods\" in API group \"\" "
            "in the namespace \"default\"");
  // A client certificate instead of a token.
  ClusterAccess cert = access("");
  std::ifstream c(server_->clientCert()), k(server_->clientKey());
  std::stringstream cs, ks;
  cs << c.rdbuf();
  ks << k.rdbuf();
  cert.client_cert_pem = cs.str();
  cert.client_key_pem = ks.str();
  auto by_cert = ApiClient::create(cert);
  ASSERT_TRUE(by_cert) << by_cert.error().message();
  EXPECT_TRUE((*by_cert)->create(kPods, pod("by-cert")));
  // A token file is read for the requests.
  std::ofstream(dir_ + "/token") << "admin-token\n";
  ClusterAccess file = access("");
  file.token_file = dir_ + "/token";
  auto by_file = ApiClient::create(file);
  ASSERT_TRUE(by_file);
  EXPECT_TRUE((*by_file)->get(kPods + "/by-cert"));
}

TEST_F(ApiClientTest, TlsWithTheWrongCaOrHostNameFailsClearly) {
  ClusterAccess wrong_ca = access("admin-token");
  std::ifstream other("/etc/ssl/certs/ca-certificates.crt");
  std::stringstream ss;
  ss << other.rdbuf();
  wrong_ca.ca_pem = ss.str();
  auto c = ApiClient::create(wrong_ca);
  ASSERT_TRUE(c);
  auto r = (*c)->get(kPods);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 0);
  EXPECT_NE(r.error().message.find("TLS handshake with"), std::string::npos) << r.error().str();
  EXPECT_NE(r.error().message.find("certificate verify failed"), std::string::npos)
      << r.error().str();

  ClusterAccess wrong_name = access("admin-token");
  wrong_name.tls_server_name = "api.example.com";
  auto n = ApiClient::create(wrong_name);
  ASSERT_TRUE(n);
  auto rn = (*n)->get(kPods);
  ASSERT_FALSE(rn);
  EXPECT_NE(rn.error().message.find("certificate verify failed"), std::string::npos)
      << rn.error().str();
  ClusterAccess right_name = access("admin-token");
  right_name.tls_server_name = "localhost";  // in the certificate's names
  EXPECT_TRUE((*ApiClient::create(right_name))->get(kPods));

  ClusterAccess garbage = access("admin-token");
  garbage.ca_pem = "not a certificate";
  auto g = ApiClient::create(garbage);
  ASSERT_FALSE(g);
  EXPECT_NE(g.error().message().find("certificate-authority"), std::string::npos);
}

TEST_F(ApiClientTest, TooManyRequestsWaitsForRetryAfter) {
  ASSERT_TRUE(server_->control("fail", "code=429&count=1&retryAfter=1"));
  auto t0 = steady_clock::now();
  size_t before = client_->requestCount();
  auto r = client_->list(kPods);
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_GE(steady_clock::now() - t0, milliseconds(950));
  EXPECT_EQ(client_->requestCount() - before, 2u);
  // Without Retry-After a 503 is the caller's to handle.
  ASSERT_TRUE(server_->control("fail", "code=503&count=1"));
  auto e = client_->list(kPods);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().reason, "ServiceUnavailable");
}

// Our two-way patch, applied by the test server's independent strategic merge,
// must turn the stored status into the new one exactly.
TEST_F(ApiClientTest, OurStatusPatchesApplyToWhatWeComputedThemFrom) {
  auto created = client_->create(kPods, pod("s"));
  ASSERT_TRUE(created);
  std::string uid = field(*created, "metadata", "uid");
  const std::string v1 = R"({"status":{"phase":"Pending","qosClass":"BestEffort","conditions":[
      {"type":"PodScheduled","status":"True"},{"type":"Ready","status":"False","reason":"ContainersNotReady"}],
      "podIPs":[{"ip":"10.88.0.2"}],"podIP":"10.88.0.2",
      "containerStatuses":[{"name":"c","ready":false,"restartCount":0,"image":"busybox","imageID":"",
        "state":{"waiting":{"reason":"ContainerCreating"}}}]}})";
  const std::string v2 = R"({"status":{"phase":"Running","qosClass":"BestEffort","conditions":[
      {"type":"PodScheduled","status":"True"},{"type":"Ready","status":"True"}],
      "podIPs":[{"ip":"10.88.0.2"}],"podIP":"10.88.0.2","startTime":"2026-01-01T00:00:00Z",
      "containerStatuses":[{"name":"c","ready":true,"restartCount":0,"image":"busybox","imageID":"x",
        "state":{"running":{"startedAt":"2026-01-01T00:00:01Z"}}}]}})";
  std::string steps[] = {v1, v2, v1};
  for (const auto& next : steps) {
    // What the server holds now, as the kubelet reads it before patching.
    auto current = client_->get(kPods + "/s");
    ASSERT_TRUE(current);
    rapidjson::Document cur;
    cur.Parse(current->c_str());
    rapidjson::Document want;
    want.Parse(next.c_str());
    rapidjson::StringBuffer a;
    rapidjson::Writer<rapidjson::StringBuffer> wa(a);
    rapidjson::Document only_status(rapidjson::kObjectType);
    only_status.AddMember("status", cur["status"], only_status.GetAllocator());
    only_status.Accept(wa);
    auto p = twoWayMergePatch(a.GetString(), next, podStatusMergeKeys());
    ASSERT_TRUE(p) << p.error().message();
    std::string body = *p;
    body.insert(1, R"("metadata":{"uid":")" + uid + R"("},)");
    auto patched = client_->patch(kPods + "/s/status", PatchType::kStrategicMerge, body);
    ASSERT_TRUE(patched) << patched.error().str() << "\n" << body;
    rapidjson::Document got;
    got.Parse(patched->c_str());
    EXPECT_TRUE(got["status"] == want["status"]) << *patched << "\npatch: " << body;
  }
}

TEST(RateLimiter, BurstThenQps) {
  auto t = RateLimiter::Clock::now();
  RateLimiter l(10, 3, t);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(l.reserve(t), RateLimiter::Clock::duration::zero());
  }
  EXPECT_NEAR(duration<double>(l.reserve(t)).count(), 0.1, 0.001);
  EXPECT_NEAR(duration<double>(l.reserve(t)).count(), 0.2, 0.001);
  // A second later the bucket has refilled (to at most the burst).
  EXPECT_EQ(l.reserve(t + seconds(2)), RateLimiter::Clock::duration::zero());
}

// What a reflector delivered, in order: "ADDED p1", "DELETED p2", ...
class Recorder {
 public:
  void operator()(const ObjectEvent& e) {
    std::lock_guard lock(mu_);
    const char* t = e.type == ObjectEvent::Type::kAdded      ? "ADDED"
                    : e.type == ObjectEvent::Type::kModified ? "MODIFIED"
                                                             : "DELETED";
    events_.push_back(std::string(t) + " " + e.name);
  }
  std::vector<std::string> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  bool waitFor(size_t n, seconds timeout = seconds(30)) {
    auto deadline = steady_clock::now() + timeout;
    while (events().size() < n && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    return events().size() >= n;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> events_;
};

ReflectorOptions podsOnNode1(bool streaming) {
  return {.path = "/api/v1/pods",
          .field_selector = "spec.nodeName=node1",
          .streaming_list = streaming,
          .backoff_initial = milliseconds(100),
          .backoff_max = milliseconds(400)};
}

TEST_F(ApiClientTest, ReflectorSeesEveryChangeOnceAcrossBreaksA410AndARestart) {
  ASSERT_TRUE(client_->create(kPods, pod("a")));
  ASSERT_TRUE(client_->create(kPods, pod("other", "node2")));
  Recorder rec;
  Reflector r(*client_, net_, podsOnNode1(false), std::ref(rec));
  r.start();
  ASSERT_TRUE(rec.waitFor(1));
  ASSERT_TRUE(client_->create(kPods, pod("b")));
  ASSERT_TRUE(
      client_->patch(kPods + "/b", PatchType::kMerge, R"({"metadata":{"labels":{"v":"2"}}})"));
  ASSERT_TRUE(rec.waitFor(3)) << r.lastError() << " watches " << r.watches();

  // The watch breaks and reconnecting fails a few times; a deletion meanwhile
  // is replayed from the history when the watch resumes.
  ASSERT_TRUE(server_->control("fail", "code=503&count=3&only=watch"));
  ASSERT_TRUE(server_->control("close-watches"));
  std::this_thread::sleep_for(milliseconds(100));
  ASSERT_TRUE(client_->remove(kPods + "/a", {.grace_period_seconds = 0}));
  ASSERT_TRUE(rec.waitFor(4));

  // 410: the history is compacted while the watch is down; the reflector
  // relists and derives what it missed from its cache.
  ASSERT_TRUE(server_->control("fail", "code=503&count=2&only=watch"));
  ASSERT_TRUE(server_->control("close-watches"));
  ASSERT_TRUE(client_->remove(kPods + "/b", {.grace_period_seconds = 0}));
  ASSERT_TRUE(client_->create(kPods, pod("c")));
  ASSERT_TRUE(server_->control("compact"));
  ASSERT_TRUE(rec.waitFor(6));
  int relists = r.relists();

  EXPECT_EQ(relists, 2);  // the first list and the one after the 410

  // The server dies and comes back with its state: the watch resumes from
  // where it was, nothing is delivered twice.
  int watches = r.watches();
  server_->kill();
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_TRUE(server_->restart());
  auto deadline = steady_clock::now() + seconds(20);
  while (r.watches() <= watches + 1 && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(
      client_->patch(kPods + "/c", PatchType::kMerge, R"({"metadata":{"labels":{"v":"3"}}})"));
  ASSERT_TRUE(rec.waitFor(7));
  std::this_thread::sleep_for(milliseconds(300));
  r.stop();
  EXPECT_EQ(rec.events(), (std::vector<std::string>{"ADDED a", "ADDED b", "MODIFIED b", "DELETED a",
                                                    "DELETED b", "ADDED c", "MODIFIED c"}));
  EXPECT_EQ(r.relists(), 2);
  // What the server kept through the crash: the deletions too.
  auto left = client_->list(kPods);
  ASSERT_TRUE(left) << left.error().str();
  std::vector<std::string> names;
  for (const auto& item : left->items) {
    size_t at = item.find(R"("metadata":{"name":")");
    ASSERT_NE(at, std::string::npos) << item;
    at += 20;
    names.push_back(item.substr(at, item.find('"', at) - at));
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"c", "other"}));
}

// The test server keeps its state as a snapshot plus a journal of changes,
// snapshotted again once the journal passes 1000 lines: a crash on either side
// of that keeps every change.
TEST_F(ApiClientTest, TheTestServerKeepsEveryChangeThroughACrashPastItsJournalSnapshot) {
  auto fast = ApiClient::create(access("admin-token"), {.qps = 0});  // not the kubelet's 50/s
  ASSERT_TRUE(fast);
  ASSERT_TRUE(client_->create(kPods, pod("untouched")));  // only in the snapshot by the end
  ASSERT_TRUE(client_->create(kPods, pod("kept")));
  ASSERT_TRUE(client_->create(kPods, pod("gone")));
  for (int i = 0; i < 1100; i++) {  // past the snapshot, then more journal
    auto patched =
        (*fast)->patch(kPods + "/kept", PatchType::kMerge,
                       R"({"metadata":{"labels":{"n":")" + std::to_string(i) + R"("}}})");
    ASSERT_TRUE(patched) << patched.error().str();
  }
  ASSERT_TRUE(client_->remove(kPods + "/gone", {.grace_period_seconds = 0}));
  server_->kill();
  ASSERT_TRUE(server_->restart());
  auto kept = client_->get(kPods + "/kept");
  ASSERT_TRUE(kept) << kept.error().str();
  EXPECT_NE(kept->find(R"("n": "1099")"), std::string::npos) << *kept;
  EXPECT_TRUE(client_->get(kPods + "/untouched"));
  auto gone = client_->get(kPods + "/gone");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, 404);
}

TEST_F(ApiClientTest, ReflectorStreamingListEndsWithTheInitialEventsBookmark) {
  ASSERT_TRUE(client_->create(kPods, pod("a")));
  ASSERT_TRUE(client_->create(kPods, pod("b")));
  Recorder rec;
  std::atomic<int> synced = 0;
  Reflector r(*client_, net_, podsOnNode1(true), std::ref(rec), [&] { synced++; });
  r.start();
  ASSERT_TRUE(rec.waitFor(2));
  auto deadline = steady_clock::now() + seconds(10);
  while (synced == 0 && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(synced, 1);
  ASSERT_TRUE(client_->remove(kPods + "/a", {.grace_period_seconds = 0}));
  ASSERT_TRUE(rec.waitFor(3));
  r.stop();
  EXPECT_EQ(rec.events(), (std::vector<std::string>{"ADDED a", "ADDED b", "DELETED a"}));
}

}  // namespace
}  // namespace kernelet::apiclient
