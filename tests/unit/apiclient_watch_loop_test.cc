// Many reflectors on one network thread (ApiLoop) against the test API server:
// they all deliver, the process' thread count does not grow with them, a
// watch the server breaks resumes without losing or repeating a change, and
// stopping them (or the loop) with calls in flight returns at once and calls
// no handler afterwards.

#include <dirent.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "apiclient/api_client.h"
#include "apiclient/api_loop.h"
#include "apiclient/reflector.h"
#include "support/api_server.h"

namespace kernelet::apiclient {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

const std::string kConfigMaps = "/api/v1/namespaces/default/configmaps";

// The threads of this process.
size_t threads() {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/task")) {
    (void)e;
    n++;
  }
  return n;
}

std::string configMap(const std::string& name, const std::string& value) {
  return R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
         R"("},"data":{"v":")" + value + R"("}})";
}

// Every event by object name, in order.
class Recorder {
 public:
  void operator()(const ObjectEvent& e) {
    static const char* kNames[] = {"ADDED", "MODIFIED", "DELETED"};
    std::lock_guard lock(mu_);
    events_[e.name].push_back(kNames[static_cast<int>(e.type)]);
    total_++;
  }
  bool waitFor(size_t n, seconds limit = seconds(60)) {
    auto deadline = steady_clock::now() + limit;
    while (total() < n && steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    return total() >= n;
  }
  size_t total() {
    std::lock_guard lock(mu_);
    return total_;
  }
  std::map<std::string, std::vector<std::string>> events() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> events_;
  size_t total_ = 0;
};

class WatchLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/kernelet-watchloop-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto s = testing::ApiServer::start(dir_, {.bookmark_seconds = 1});
    ASSERT_TRUE(s) << s.error().message();
    server_.emplace(std::move(*s));
    ClusterAccess a;
    a.server = server_->url();
    std::ifstream in(server_->caFile());
    std::stringstream ss;
    ss << in.rdbuf();
    a.ca_pem = ss.str();
    a.token = "admin-token";
    auto c = ApiClient::create(a, {.qps = 0});  // the test's own pace, not the kubelet's 50/s
    ASSERT_TRUE(c) << c.error().message();
    client_ = std::move(*c);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }
  void createConfigMaps(int n) {
    for (int i = 0; i < n; i++) {
      auto made = client_->create(kConfigMaps, configMap("cm-" + std::to_string(i), "0"));
      ASSERT_TRUE(made) << made.error().str();
    }
  }
  // One reflector per ConfigMap, as the agent watches them.
  std::unique_ptr<Reflector> watchOne(ApiLoop& net, int i, Reflector::Handler handler) {
    ReflectorOptions o{.path = kConfigMaps,
                       .field_selector = "metadata.name=cm-" + std::to_string(i),
                       .backoff_initial = milliseconds(100),
                       .backoff_max = milliseconds(400)};
    auto r = std::make_unique<Reflector>(*client_, net, o, std::move(handler));
    r->start();
    return r;
  }

  std::string dir_;
  std::optional<testing::ApiServer> server_;
  std::unique_ptr<ApiClient> client_;
};

TEST_F(WatchLoopTest, TwoHundredWatchesShareOneThreadAndResumeAfterTheServerBreaksThem) {
  constexpr int kWatches = 200;
  createConfigMaps(kWatches);
  ApiLoop net;
  net.start();
  size_t before = threads();
  Recorder rec;
  std::vector<std::unique_ptr<Reflector>> watches;
  for (int i = 0; i < kWatches; i++) {
    watches.push_back(watchOne(net, i, std::ref(rec)));
  }
  ASSERT_TRUE(rec.waitFor(kWatches)) << rec.total() << " of " << kWatches;
  EXPECT_EQ(threads(), before) << "a thread per watch?";

  // Every watch is broken by the server; changes made meanwhile arrive once
  // each when they resume from the resourceVersion they had reached.
  int watched = 0;
  for (const auto& w : watches) {
    watched += w->watches();
  }
  ASSERT_TRUE(server_->control("close-watches"));
  for (int i = 0; i < kWatches; i++) {
    auto patched = client_->patch(kConfigMaps + "/cm-" + std::to_string(i), PatchType::kMerge,
                                  R"({"data":{"v":"1"}})");
    ASSERT_TRUE(patched) << patched.error().str();
  }
  ASSERT_TRUE(rec.waitFor(2 * kWatches)) << rec.total() << " of " << 2 * kWatches;
  std::this_thread::sleep_for(milliseconds(300));  // room for a duplicate to show up
  auto events = rec.events();
  ASSERT_EQ(events.size(), static_cast<size_t>(kWatches));
  for (const auto& [name, list] : events) {
    EXPECT_EQ(list, (std::vector<std::string>{"ADDED", "MODIFIED"})) << name;
  }
  int rewatched = 0;
  for (const auto& w : watches) {
    rewatched += w->watches();
    EXPECT_EQ(w->relists(), 1) << w->lastError();
  }
  EXPECT_GE(rewatched, watched + kWatches);  // each one watched again
  EXPECT_EQ(threads(), before);
  watches.clear();
  net.stop();
}

TEST_F(WatchLoopTest, StoppingWithCallsInFlightReturnsAtOnceAndCallsNothingAfter) {
  constexpr int kWatches = 40;
  createConfigMaps(kWatches);
  ApiLoop net;
  net.start();
  std::atomic<int> calls = 0;
  auto count = [&calls](const ObjectEvent&) { calls++; };

  // Lists stalled by the server: every reflector has a request in flight.
  ASSERT_TRUE(server_->control("stall", "seconds=3"));
  std::vector<std::unique_ptr<Reflector>> watches;
  for (int i = 0; i < kWatches; i++) {
    watches.push_back(watchOne(net, i, count));
  }
  std::this_thread::sleep_for(milliseconds(500));
  auto t0 = steady_clock::now();
  watches.clear();
  EXPECT_LT(steady_clock::now() - t0, milliseconds(500));
  ASSERT_TRUE(server_->control("stall", "seconds=0"));

  // Watches streaming: half stopped one by one, the loop stopped under the
  // other half, which are destroyed afterwards.
  Recorder rec;
  for (int i = 0; i < kWatches; i++) {
    watches.push_back(watchOne(net, i, std::ref(rec)));
  }
  ASSERT_TRUE(rec.waitFor(kWatches));
  for (int i = 0; i < kWatches / 2; i++) {
    watches[i].reset();
  }
  t0 = steady_clock::now();
  net.stop();
  EXPECT_LT(steady_clock::now() - t0, milliseconds(500));
  for (int i = 0; i < kWatches; i++) {
    auto patched = client_->patch(kConfigMaps + "/cm-" + std::to_string(i), PatchType::kMerge,
                                  R"({"data":{"v":"1"}})");
    ASSERT_TRUE(patched) << patched.error().str();
  }
  std::this_thread::sleep_for(milliseconds(3500));  // past the stalled lists' answers
  watches.clear();
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(rec.total(), static_cast<size_t>(kWatches));
}

}  // namespace
}  // namespace kernelet::apiclient
