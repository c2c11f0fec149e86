// lifecycle.postStart and preStop: how the decoder validates them (as the
// API server does), and how the pod worker runs them through the fake
// runtime (one of the pod's seconds lasts 10 ms): what a user sees in the
// status, the events and the order of the runtime's calls.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "unit/lifecycle_fixture.h"

namespace kernelet::agent {
namespace {

using Clock = std::chrono::steady_clock;

std::string manifest(const std::string& spec) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n" + spec;
}

void expectError(const std::string& spec, const std::string& error) {
  auto pods = parseManifests(manifest(spec), "/m/p.yaml");
  ASSERT_FALSE(pods) << spec;
  EXPECT_EQ(pods.error().message(), "parse manifest `/m/p.yaml`: " + error);
}

// The Kubernetes documentation's lifecycle example ("Attach Handlers to
// Container Lifecycle Events"), with a named port for an httpGet preStop.
TEST(HookManifest, HandlersDecodeAsTheApiDefinesThem) {
  auto pods = parseManifests(manifest(R"(  containers:
  - name: lifecycle-demo-container
    image: nginx
    ports: [{name: http, containerPort: 8080}]
    lifecycle:
      postStart:
        exec:
          command: ["/bin/sh", "-c", "echo Hello from the postStart handler > /usr/share/message"]
      preStop:
        httpGet:
          path: drain
          port: http
          host: 10.0.0.9
          scheme: HTTPS
          httpHeaders: [{name: X-Drain, value: "1"}]
  - name: sleeper
    image: busybox
    lifecycle:
      preStop: {sleep: {seconds: 30}}
      postStart: {tcpSocket: {port: 80}}
)"),
                             "/m/p.yaml");
  ASSERT_TRUE(pods) << pods.error().message();
  const Container& c = (*pods)[0].pod.containers[0];
  ASSERT_TRUE(c.lifecycle.post_start);
  EXPECT_EQ(c.lifecycle.post_start->kind, LifecycleHandler::Kind::kExec);
  EXPECT_EQ(
      c.lifecycle.post_start->action.command,
      (Strings{"/bin/sh", "-c", "echo Hello from the postStart handler > /usr/share/message"}));
  EXPECT_EQ(c.lifecycle.post_start->action.timeout_seconds, 0) << "a hook has no probe timeout";
  ASSERT_TRUE(c.lifecycle.pre_stop);
  const LifecycleHandler& pre = *c.lifecycle.pre_stop;
  EXPECT_EQ(pre.kind, LifecycleHandler::Kind::kHttpGet);
  EXPECT_EQ(pre.action.path, "/drain");
  EXPECT_EQ(pre.action.port, 8080) << "the named port resolved";
  EXPECT_EQ(pre.action.host, "10.0.0.9");
  EXPECT_EQ(pre.action.scheme, "HTTPS");
  EXPECT_EQ(pre.action.headers,
            (std::vector<std::pair<std::string, std::string>>{{"X-Drain", "1"}}));
  const Container& s = (*pods)[0].pod.containers[1];
  EXPECT_EQ(s.lifecycle.pre_stop->kind, LifecycleHandler::Kind::kSleep);
  EXPECT_EQ(s.lifecycle.pre_stop->sleep_seconds, 30) << "equal to the grace period is allowed";
  // Deprecated, never validated by the API: accepted, and it fails when run.
  EXPECT_EQ(s.lifecycle.post_start->kind, LifecycleHandler::Kind::kTcpSocket);
  EXPECT_EQ(s.lifecycle.post_start->action.port, 80);
}

TEST(HookManifest, ErrorsNameTheFieldAsTheApiServerDoes) {
  expectError(R"(  containers:
  - name: c
    image: i
    lifecycle:
      preStop:
        httpGet: {path: /drain}
)",
              "line 10: spec.containers[0].lifecycle.preStop.httpGet.port: required");
  expectError("  containers:\n  - {name: c, image: i, lifecycle: {postStart: {}}}\n",
              "line 6: spec.containers[0].lifecycle.postStart: must specify a handler type");
  expectError(
      "  containers:\n  - {name: c, image: i, lifecycle: {preStop: {exec: {command: [a]}, "
      "sleep: {seconds: 1}}}}\n",
      "line 6: spec.containers[0].lifecycle.preStop.sleep: may not specify more than 1 handler "
      "type");
  expectError("  containers:\n  - {name: c, image: i, lifecycle: {preStop: {exec: {}}}}\n",
              "line 6: spec.containers[0].lifecycle.preStop.exec.command: required");
  expectError("  containers:\n  - {name: c, image: i, lifecycle: {preStop: {sleep: {}}}}\n",
              "line 6: spec.containers[0].lifecycle.preStop.sleep.seconds: required");
  expectError(
      "  containers:\n  - {name: c, image: i, lifecycle: {postStart: {httpGet: {port: web}}}}\n",
      "line 6: spec.containers[0].lifecycle.postStart.httpGet.port: no container port named "
      "\"web\"");
  expectError(
      "  initContainers:\n  - {name: s, image: i, restartPolicy: Always, lifecycle: {preStop: "
      "{sleep: {seconds: 31}}}}\n  containers:\n  - {name: c, image: i}\n",
      "line 6: spec.initContainers[0].lifecycle.preStop.sleep.seconds: Invalid value: 31: must "
      "be non-negative and less than terminationGracePeriodSeconds (30)");
  expectError(
      "  terminationGracePeriodSeconds: 5\n  containers:\n  - {name: c, image: i, lifecycle: "
      "{postStart: {sleep: {seconds: -1}}}}\n",
      "line 7: spec.containers[0].lifecycle.postStart.sleep.seconds: Invalid value: -1: must be "
      "non-negative and less than terminationGracePeriodSeconds (5)");
  expectError("  containers:\n  - {name: c, image: i, lifecycle: {stopSignal: SIGUSR1}}\n",
              "line 6: spec.containers[0].lifecycle.stopSignal: Forbidden: may not be set for "
              "containers with empty `spec.os.name`");
  expectError("  containers:\n  - {name: c, image: i, lifecycle: {preStop: [sleep]}}\n",
              "line 6: spec.containers[0].lifecycle.preStop: must be a map");
}

// Whether `first` was called before `second` (both present).
bool before(const Strings& calls, const std::string& first, const std::string& second) {
  auto a = std::find(calls.begin(), calls.end(), first);
  auto b = std::find(calls.begin(), calls.end(), second);
  return a != calls.end() && b != calls.end() && a < b;
}

TEST_F(Lifecycle, PostStartHoldsTheContainerAndTheNextStartUntilItReturns) {
  runtime_->addImage("busybox");
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    lifecycle: {postStart: {sleep: {seconds: 5}}}
  - {name: worker, image: busybox}
)");
  ASSERT_TRUE(until([&] { return runtime_->running("app"); }));
  auto started = Clock::now();
  // The process runs, but until its postStart returned the container is not
  // Running, and the kubelet's SyncPod starts nothing after it.
  EXPECT_EQ(ctr("app").state.kind, Kind::kWaiting);
  EXPECT_EQ(ctr("app").state.reason, "ContainerCreating");
  EXPECT_EQ(runtime_->starts("worker"), 0);
  EXPECT_EQ(condition("Ready"), "False");
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_GE(Clock::now() - started, std::chrono::milliseconds(40));
  ASSERT_TRUE(until([&] { return running("worker"); }));
  EXPECT_EQ(runtime_->calls("start "), (Strings{"start app", "start worker"}));
  EXPECT_FALSE(ctr("app").state.started_at.empty());
  EXPECT_TRUE(until([&] { return condition("Ready") == "True"; }));
  EXPECT_FALSE(sawEvent("Warning"));
}

TEST_F(Lifecycle, PostStartExecRunsInTheStartedContainer) {
  runtime_->addImage("busybox");
  runtime_->setExec("app", 0, "hello");
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    lifecycle:
      postStart: {exec: {command: [sh, -c, "echo hello > /usr/share/message"]}}
)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_TRUE(before(runtime_->calls(), "start app", "exec app sh"));
  EXPECT_FALSE(sawEvent("Warning FailedPostStartHook"));
  EXPECT_EQ(runtime_->starts("app"), 1);
}

TEST_F(Lifecycle, AFailedPostStartKillsTheContainerAndItRestartsPerPolicy) {
  runtime_->addImage("busybox");
  runtime_->setExec("app", 1, "no message file");
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    lifecycle: {postStart: {exec: {command: [sh, -c, "exit 1"]}}}
)");
  ASSERT_TRUE(until([&] { return runtime_->starts("app") >= 2; }));
  // The event keeps the output out (it may hold secrets); the kill names the hook.
  EXPECT_TRUE(sawEvent("Warning FailedPostStartHook app: PostStartHook failed"));
  EXPECT_TRUE(sawEvent("Normal Killing app: FailedPostStartHook"));
  EXPECT_TRUE(before(runtime_->calls(), "exec app sh", "signal app 15"));
  EXPECT_EQ(ctr("app").last_state.kind, Kind::kTerminated);
  EXPECT_EQ(ctr("app").last_state.exit_code, 143);
  // Until it ran again its status said why, with the kubelet's message.
  std::string message;
  for (const auto& s : history_) {
    for (const auto& c : s.container_statuses) {
      if (c.state.reason == "PostStartHookError") {
        message = c.state.message;
      }
    }
  }
  EXPECT_EQ(message,
            "Exec lifecycle hook ([sh -c exit 1]) for Container \"app\" in Pod "
            "\"web_default(u1)\" failed - error: command 'sh -c exit 1' exited with 1: , "
            "message: \"no message file\"");
  // It never became Running; a failing postStart crash-loops.
  ASSERT_TRUE(until([&] { return ctr("app").state.reason == "CrashLoopBackOff"; }));
  EXPECT_EQ(worker_->status().phase, "Running");
}

TEST_F(Lifecycle, AFailedPostStartWithRestartPolicyNeverFailsThePod) {
  runtime_->addImage("busybox");
  run(R"(spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox
    lifecycle: {postStart: {tcpSocket: {port: 80}}}
)");
  ASSERT_TRUE(until([&] { return worker_->status().phase == "Failed"; }));
  EXPECT_TRUE(sawEvent("Warning FailedPostStartHook app: PostStartHook failed"));
  EXPECT_EQ(runtime_->starts("app"), 1);
  EXPECT_EQ(ctr("app").state.kind, Kind::kTerminated);
  EXPECT_EQ(ctr("app").state.exit_code, 143);
}

TEST_F(Lifecycle, PreStopRunsBeforeTheStopSignal) {
  runtime_->addImage("busybox");
  runtime_->setExec("app", 0);
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    lifecycle: {preStop: {exec: {command: [nginx, -s, quit]}}}
)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  ASSERT_TRUE(terminate());
  EXPECT_TRUE(before(runtime_->calls(), "exec app nginx", "signal app 15"));
  EXPECT_TRUE(sawEvent("Normal Killing app: Stopping container app"));
  EXPECT_FALSE(sawEvent("Warning FailedPreStopHook"));
  EXPECT_TRUE(runtime_->calls("kill ").empty());
}

TEST_F(Lifecycle, APreStopSleepDelaysTheStopSignal) {
  runtime_->addImage("busybox");
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    lifecycle: {preStop: {sleep: {seconds: 5}}}
)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  auto asked = Clock::now();
  bool done = false;
  worker_->terminate([&done] { done = true; });
  ASSERT_TRUE(until([&] { return !runtime_->calls("signal ").empty(); }));
  EXPECT_GE(Clock::now() - asked, std::chrono::milliseconds(45));
  ASSERT_TRUE(until([&] { return done; }));
  EXPECT_TRUE(runtime_->calls("kill ").empty()) << "it exited on the signal, within the grace";
}

// The hook has the grace period (here a deletion's 3 s) and no more; the
// container then gets the stop signal and, as the kubelet gives, 2 s more.
TEST_F(Lifecycle, APreStopLongerThanTheGraceIsCutAtTheGrace) {
  runtime_->addImage("busybox");
  runtime_->ignoreStopSignal("app");
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    lifecycle: {preStop: {sleep: {seconds: 20}}}
)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  auto asked = Clock::now();
  bool done = false;
  worker_->terminate([&done] { done = true; }, 3);
  ASSERT_TRUE(until([&] { return !runtime_->calls("signal ").empty(); }));
  auto signalled = Clock::now();
  EXPECT_GE(signalled - asked, std::chrono::milliseconds(25));
  EXPECT_LT(signalled - asked, std::chrono::milliseconds(190)) << "not after the 20 s sleep";
  ASSERT_TRUE(until([&] { return !runtime_->calls("kill ").empty(); }));
  EXPECT_GE(Clock::now() - signalled, std::chrono::milliseconds(15)) << "the 2 s minimum";
  ASSERT_TRUE(until([&] { return done; }));
  EXPECT_EQ(ctr("app").state.exit_code, 137);
}

TEST_F(Lifecycle, AFailedPreStopIsAWarningAndTheStopGoesOn) {
  runtime_->addImage("busybox");
  runtime_->setExec("app", 1, "drain failed");
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    lifecycle: {preStop: {exec: {command: [drain]}}}
)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  ASSERT_TRUE(terminate());
  EXPECT_TRUE(sawEvent("Warning FailedPreStopHook app: PreStopHook failed"));
  EXPECT_TRUE(before(runtime_->calls(), "exec app drain", "signal app 15"));
  EXPECT_EQ(worker_->state(), PodState::kTerminated);
}

// The kubelet's killContainer runs preStop whatever the reason for the stop:
// a failed liveness probe too.
TEST_F(Lifecycle, AContainerStoppedForItsLivenessProbeRunsItsPreStopFirst) {
  runtime_->addImage("busybox");
  runtime_->setExec("app", 1, "unhealthy");
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    livenessProbe: {exec: {command: [check]}, periodSeconds: 1, failureThreshold: 1}
    lifecycle: {preStop: {sleep: {seconds: 3}}}
)");
  ASSERT_TRUE(until([&] { return sawEvent("Normal Killing app: Container app failed liveness"); }));
  auto killing = Clock::now();
  ASSERT_TRUE(until([&] { return !runtime_->calls("signal ").empty(); }));
  EXPECT_GE(Clock::now() - killing, std::chrono::milliseconds(25));
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2; }));
}

// A loopback server answering one request with `answer`.
class OneAnswer {
 public:
  explicit OneAnswer(std::string answer) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 1);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, answer] {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        return;
      }
      char buf[2048];
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      request_.assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
      (void)::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~OneAnswer() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) {
      thread_.join();
    }
    ::close(fd_);
  }
  int port() const { return port_; }
  // What it was asked, once it answered.
  std::string request() {
    thread_.join();
    return request_;
  }

 private:
  int fd_ = -1, port_ = 0;
  std::thread thread_;
  std::string request_;
};

// The kubelet's hook runner reads no status code: a 500 is a success.
TEST_F(Lifecycle, AnHttpPreStopGoesOutAsTheKubeletsAndAnyAnswerIsASuccess) {
  OneAnswer server("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
  runtime_->addImage("busybox");
  run(R"(spec:
  containers:
  - name: app
    image: busybox
    ports: [{name: admin, containerPort: )" +
      std::to_string(server.port()) + R"(}]
    lifecycle:
      preStop: {httpGet: {host: 127.0.0.1, port: admin, path: /drain, httpHeaders: [{name: X-Why, value: delete}]}}
)");
  ASSERT_TRUE(until([&] { return running("app"); }));
  ASSERT_TRUE(terminate());
  EXPECT_FALSE(sawEvent("Warning FailedPreStopHook"));
  std::string req = server.request();
  EXPECT_TRUE(req.starts_with("GET /drain HTTP/1.1\r\n")) << req;
  EXPECT_NE(req.find("User-Agent: kube-lifecycle/1.35\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("X-Why: delete\r\n"), std::string::npos) << req;
}

}  // namespace
}  // namespace kernelet::agent
