// End to end in the test VM: the agent's own HTTPS server (issue #17) as a
// cluster's users reach it. Real kubectl through the test API server (which
// proxies pods/log and nodes/NAME/proxy to the agent with its kubelet client
// certificate), and curl straight at the agent's port for authentication and
// authorization (TokenReview and SubjectAccessReview against the test API
// server's policy).
//
// One API server, one agent and two pods serve every case, to stay cheap:
//   talker    (OnFailure) app: three lines, then a line per file the test
//             creates in the shared hostPath (go, stop), then exits 0;
//             side: a loop that keeps using a little CPU
//   restarter (Always) app: "first run" and exit 1, then "second run" and stay
// Every failure prints what kubectl said and the agent's log.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/api_server.h"
#include "support/privileged.h"
#include "support/process_util.h"
#include "sys/fileio.h"
#include "sys/json.h"

namespace kernelet {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

const std::string kImage = "fixtures.kernelet.test/busybox:latest";

// Runs `cmd` through the shell; stdout and stderr together, and the exit status.
std::pair<std::string, int> run(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    return {"popen failed", -1};
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    out.append(buf, n);
  }
  int status = ::pclose(p);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

// The API server, the agent and the pods every case shares.
struct Cluster {
  std::string base, root, run_dir, cgroup_root, shared;
  std::unique_ptr<testing::ApiServer> server;
  pid_t agent = -1;
  int port = 0;  // the agent's server, from the Node's daemonEndpoints
  std::string setup_error;

  ~Cluster() {
    if (agent > 0) {
      ::kill(agent, SIGTERM);
      ::waitpid(agent, nullptr, 0);
    }
    server.reset();
    std::error_code ec;
    fs::remove_all(base, ec);
    std::string top = "/sys/fs/cgroup" + cgroup_root;
    for (const char* q : {"/kubepods/burstable", "/kubepods/besteffort", "/kubepods", ""}) {
      ::rmdir((top + q).c_str());
    }
  }

  std::string kubectl(const std::string& args) const { return server->kubectl(args); }
  std::string agentLog() const { return readFile(base + "/agent.log").value_or(""); }

  // Polls `kubectl ARGS` until `ok`; the last output either way.
  std::string waitKubectl(const std::string& args,
                          const std::function<bool(const std::string&)>& ok, bool& seen,
                          seconds timeout = seconds(180)) {
    auto deadline = steady_clock::now() + timeout;
    std::string out;
    seen = false;
    while (steady_clock::now() < deadline) {
      out = kubectl(args);
      if (ok(out)) {
        seen = true;
        return out;
      }
      if (agentExited()) {
        return out + "\n(the agent has exited)";
      }
      std::this_thread::sleep_for(milliseconds(300));
    }
    return out;
  }

  // Whether the agent is gone (a flag it does not know, a crash): then
  // waiting on it is pointless, and its log says why.
  bool agentExited() {
    int status = 0;
    if (agent > 0 && ::waitpid(agent, &status, WNOHANG) == agent) {
      agent = -1;
      return true;
    }
    return agent <= 0;
  }

  void start() {
    std::string id = std::to_string(::getpid());
    base = "/tmp/kernelet-node-server-" + id;
    root = base + "/root";
    run_dir = "/run/kernelet-node-server-" + id;
    cgroup_root = "/kernelet-node-server-" + id;
    shared = base + "/shared";
    fs::create_directories(shared);
    fs::create_directories(base + "/manifests");
    testing::ApiServer::Options options;
    options.validate_agent = "admin";
    // A user who may only `get nodes/proxy` (and so read /healthz by the
    // kubelet's fallback from the healthz subresource to proxy).
    options.users = {{.token = "proxy-token", .name = "proxy-reader", .uid = "uid-1"}};
    options.policy = {
        {.user = "proxy-reader", .verb = "get", .resource = "nodes", .subresource = "proxy"}};
    auto s = testing::ApiServer::start(base + "/api", options);
    if (!s) {
      setup_error = s.error().message();
      return;
    }
    server = std::make_unique<testing::ApiServer>(std::move(*s));
    auto [import_out, import_rc] = run(std::string(KERNELET_BINARY) + " images --root-dir " + root +
                                       " import " + KERNELET_FIXTURES + "/oci/busybox");
    if (import_rc != 0) {
      setup_error = "image import: " + import_out;
      return;
    }
    agent = testing::spawnLogged({KERNELET_BINARY,
                                  "run",
                                  "--kubeconfig",
                                  server->kubeconfig(),
                                  "--pod-manifest-path",
                                  base + "/manifests",
                                  "--root-dir",
                                  root,
                                  "--pod-log-dir",
                                  base + "/logs",
                                  "--run-dir",
                                  run_dir,
                                  "--cgroup-root",
                                  cgroup_root,
                                  "--hostname-override",
                                  "node1",
                                  "--node-ip",
                                  "127.0.0.1",
                                  "--port=0",
                                  "--client-ca-file",
                                  server->caFile(),
                                  "--authentication-token-webhook",
                                  "--authorization-mode",
                                  "Webhook",
                                  "--stop-pods-on-exit",
                                  "-v",
                                  "2"},
                                 base + "/agent.log");
    bool seen = false;
    std::string p = waitKubectl(
        "get node node1 -o jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
        [](const std::string& s) { return !s.empty() && s != "0" && std::isdigit(s[0]); }, seen);
    if (!seen) {
      setup_error = "no daemonEndpoints port on node1: " + p + "\n" + agentLog();
      return;
    }
    port = std::stoi(p);
    apply("talker", R"(apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  nodeName: node1
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 2
  volumes: [{name: shared, hostPath: {path: )" +
                        shared +
                        R"(}}]
  containers:
  - name: app
    image: )" + kImage + R"(
    imagePullPolicy: Never
    volumeMounts: [{name: shared, mountPath: /shared}]
    command: [sh, -c, 'echo first; echo second; echo third; while [ ! -e /shared/go ]; do sleep 0.2; done; echo fourth; while [ ! -e /shared/stop ]; do sleep 0.2; done; echo last']
  - name: side
    image: )" + kImage + R"(
    imagePullPolicy: Never
    command: [sh, -c, 'echo side up; while true; do sleep 0.2; done']
)");
    apply("restarter", R"(apiVersion: v1
kind: Pod
metadata: {name: restarter}
spec:
  nodeName: node1
  terminationGracePeriodSeconds: 2
  volumes: [{name: shared, hostPath: {path: )" +
                           shared +
                           R"(}}]
  containers:
  - name: app
    image: )" + kImage + R"(
    imagePullPolicy: Never
    volumeMounts: [{name: shared, mountPath: /shared}]
    command: [sh, -c, 'if [ -e /shared/ran ]; then echo second run; exec sleep 3600; fi; touch /shared/ran; echo first run; exit 1']
)");
    std::string running = waitKubectl(
        "get pod talker -o jsonpath={.status.phase}",
        [](const std::string& s) { return s == "Running"; }, seen);
    if (!seen) {
      setup_error = "talker not Running: " + running + "\n" + agentLog();
    }
  }

  void apply(const std::string& name, const std::string& yaml) {
    std::string file = base + "/" + name + ".yaml";
    std::ofstream(file) << yaml;
    std::string out = kubectl("apply -f " + file);
    if (out.find("created") == std::string::npos) {
      setup_error += "apply " + name + ": " + out;
    }
  }

  // curl straight at the agent's server: "STATUS" (000 when TLS failed).
  std::string curl(const std::string& args, const std::string& path) const {
    auto [out, rc] = run("curl -sk -o /dev/null -w '%{http_code}' --max-time 30 " + args +
                         " 'https://127.0.0.1:" + std::to_string(port) + path + "'");
    (void)rc;  // 000 says a failed handshake; the status is what is compared
    return out;
  }
};

Cluster* cluster = nullptr;

class NodeServerE2E : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    delete cluster;
    cluster = nullptr;
  }

  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    for (const char* tool : {"/usr/bin/kubectl", "/usr/bin/curl"}) {
      if (::access(tool, X_OK) != 0) {
        if (std::getenv("CI") != nullptr || testing::inTestVm()) {
          FAIL() << tool << " is not installed";
        }
        GTEST_SKIP() << tool << " is not installed";
      }
    }
    if (cluster == nullptr) {
      cluster = new Cluster();
      cluster->start();
    }
    ASSERT_TRUE(cluster->setup_error.empty()) << cluster->setup_error;
  }

  std::string kubectl(const std::string& args) { return cluster->kubectl(args); }
  std::string raw(const std::string& path) {
    return kubectl("get --raw '/api/v1/nodes/node1/proxy" + path + "'");
  }
  // Polls kubectl until `ok`, failing with the output and the agent's log.
  std::string waitFor(const std::string& args, const std::function<bool(const std::string&)>& ok,
                      const std::string& what) {
    bool seen = false;
    std::string out = cluster->waitKubectl(args, ok, seen);
    if (!seen) {
      ADD_FAILURE() << what << " not seen; last: " << out << "\n" << cluster->agentLog();
    }
    return out;
  }
};

auto equals(const std::string& want) {
  return [want](const std::string& s) { return s == want; };
}

TEST_F(NodeServerE2E, KubectlLogsShowsContentTailTimestampsAndPicksTheContainer) {
  waitFor("logs talker -c app", equals("first\nsecond\nthird\n"), "talker's three lines");
  EXPECT_EQ(kubectl("logs talker -c app --tail=1"), "third\n");
  std::string stamped = kubectl("logs talker -c app --timestamps --tail=2");
  EXPECT_TRUE(std::regex_match(stamped, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z second
\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z third
)"))) << stamped;
  waitFor("logs talker -c side", equals("side up\n"), "side's line");
  // kubectl picks the first container itself (and says so); the API server,
  // asked without one, names them.
  std::string defaulted = kubectl("logs talker");
  EXPECT_NE(defaulted.find("Defaulted container \"app\" out of: app, side"), std::string::npos)
      << defaulted;
  EXPECT_NE(defaulted.find("first\nsecond\nthird\n"), std::string::npos) << defaulted;
  std::string unnamed = kubectl("get --raw /api/v1/namespaces/default/pods/talker/log");
  EXPECT_NE(unnamed.find("a container name must be specified for pod talker, choose one of: "
                         "[app side]"),
            std::string::npos)
      << unnamed;
}

TEST_F(NodeServerE2E, StatsSummaryHasThePodWithWorkingSetAndGrowingCpu) {
  // The pod's usageCoreNanoSeconds from one read (-1 when absent), its
  // workingSetBytes into `ws`.
  bool pressure_and_swap = false;
  auto read = [&](int64_t& ws, std::string& body) -> int64_t {
    body = raw("/stats/summary");
    auto doc = json::parse(body, "parse", "stats/summary");
    if (!doc || !doc->IsObject() || !doc->HasMember("pods") || !(*doc)["pods"].IsArray()) {
      return -1;
    }
    for (const auto& pod : (*doc)["pods"].GetArray()) {
      if (!pod.IsObject() || !pod.HasMember("podRef") || !pod["podRef"].IsObject() ||
          !pod["podRef"].HasMember("name") || !pod["podRef"]["name"].IsString() ||
          std::string(pod["podRef"]["name"].GetString()) != "talker") {
        continue;
      }
      // Pressure and swap, which the VM's kernel has (PSI on, swap accounting).
      pressure_and_swap = pod.HasMember("cpu") && pod["cpu"].HasMember("psi") &&
                          pod.HasMember("memory") && pod["memory"].HasMember("psi") &&
                          pod.HasMember("io") && pod["io"].HasMember("psi") &&
                          pod.HasMember("swap") && pod["swap"].HasMember("swapUsageBytes");
      ws = pod.HasMember("memory") && pod["memory"].HasMember("workingSetBytes") &&
                   pod["memory"]["workingSetBytes"].IsNumber()
               ? pod["memory"]["workingSetBytes"].GetInt64()
               : -1;
      if (pod.HasMember("cpu") && pod["cpu"].HasMember("usageCoreNanoSeconds") &&
          pod["cpu"]["usageCoreNanoSeconds"].IsNumber()) {
        return pod["cpu"]["usageCoreNanoSeconds"].GetInt64();
      }
    }
    return -1;
  };
  int64_t ws = -1;
  std::string body;
  int64_t first = read(ws, body);
  ASSERT_GT(first, 0) << body << "\n" << cluster->agentLog();
  EXPECT_GT(ws, 0) << body;
  EXPECT_TRUE(pressure_and_swap) << body;
  // The side container keeps forking sleep: its usage grows within seconds.
  auto deadline = steady_clock::now() + seconds(60);
  int64_t later = first;
  while (later <= first && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(500));
    later = read(ws, body);
  }
  EXPECT_GT(later, first) << body;
}

TEST_F(NodeServerE2E, MetricsResourceHasTheWorkingSetOfEveryRunningContainer) {
  waitFor(
      "get pod restarter -o jsonpath={.status.containerStatuses[0].state.running.startedAt}",
      [](const std::string& s) { return !s.empty(); }, "restarter running");
  std::string text = raw("/metrics/resource");
  for (const auto& [pod, container] :
       std::vector<std::pair<std::string, std::string>>{{"talker", "side"}, {"restarter", "app"}}) {
    // Labels in any order, as a Prometheus parser reads them.
    std::string pattern = "\\ncontainer_memory_working_set_bytes\\{(?=[^}]*container=\"";
    pattern += container;
    pattern += "\")(?=[^}]*namespace=\"default\")(?=[^}]*pod=\"";
    pattern += pod;
    pattern += "\")[^}]*\\} ([0-9.e+]+)";
    std::regex line(pattern);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(text, m, line)) << pod << "/" << container << " in:\n" << text;
    EXPECT_GT(std::stod(m[1]), 0) << m[0];
  }
  EXPECT_NE(text.find("# TYPE container_memory_working_set_bytes gauge"), std::string::npos)
      << text;
}

TEST_F(NodeServerE2E, HealthzAndPodsThroughTheNodeProxy) {
  EXPECT_EQ(raw("/healthz"), "ok");
  std::string pods = raw("/pods");
  for (const char* want :
       {R"("kind"\s*:\s*"PodList")", R"("name"\s*:\s*"talker")", R"("name"\s*:\s*"restarter")"}) {
    EXPECT_TRUE(std::regex_search(pods, std::regex(want))) << want << " in " << pods;
  }
}

TEST_F(NodeServerE2E, PreviousShowsTheRunBeforeTheRestart) {
  waitFor("logs restarter", equals("second run\n"), "restarter's second run");
  EXPECT_EQ(kubectl("logs restarter --previous"), "first run\n");
  EXPECT_EQ(kubectl("get pod restarter -o jsonpath={.status.containerStatuses[0].restartCount}"),
            "1");
}

TEST_F(NodeServerE2E, FollowGetsNewLinesAndEndsWhenTheContainerExits) {
  waitFor("logs talker -c app", equals("first\nsecond\nthird\n"), "talker's three lines");
  ASSERT_FALSE(fs::exists(cluster->shared + "/go")) << "the follow case runs once per agent";
  std::string cmd =
      "KUBECONFIG=" + cluster->server->kubeconfig() + " timeout 120 kubectl logs -f talker -c app";
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  auto line = [&] {
    char buf[512] = {};
    return std::fgets(buf, sizeof buf, p) != nullptr ? std::string(buf) : std::string("<EOF>");
  };
  EXPECT_EQ(line(), "first\n");
  EXPECT_EQ(line(), "second\n");
  EXPECT_EQ(line(), "third\n");
  // Written only now: the follow must deliver it while the container runs.
  std::ofstream(cluster->shared + "/go") << "";
  EXPECT_EQ(line(), "fourth\n");
  std::ofstream(cluster->shared + "/stop") << "";
  EXPECT_EQ(line(), "last\n");
  // The container exits 0: the kubelet ends the stream, kubectl exits 0.
  EXPECT_EQ(line(), "<EOF>");
  int status = ::pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "kubectl logs -f ended with " << status << "\n"
      << cluster->agentLog();
}

TEST_F(NodeServerE2E, StraightAtThePortCredentialsAreCheckedAndStreamsNeedCreate) {
  const std::string exec = "/exec/default/talker/side?command=true&output=1";
  EXPECT_EQ(cluster->curl("", "/healthz"), "401");
  EXPECT_EQ(cluster->curl("", "/pods"), "401");
  std::string token = "-H 'Authorization: Bearer proxy-token' ";
  EXPECT_EQ(cluster->curl(token, "/healthz"), "200");
  EXPECT_EQ(cluster->curl(token + "-X POST", exec), "403");
  // A WebSocket upgrade is a GET: still a stream into the container.
  EXPECT_EQ(cluster->curl(token + "-H 'Connection: Upgrade' -H 'Upgrade: websocket' "
                                  "-H 'Sec-WebSocket-Version: 13' "
                                  "-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "
                                  "-H 'Sec-WebSocket-Protocol: v5.channel.k8s.io'",
                          exec),
            "403");
  EXPECT_EQ(cluster->curl("-H 'Authorization: Bearer no-such-token'", "/healthz"), "401");
  // A client certificate from another CA.
  std::string d = cluster->base + "/other-ca/";
  fs::create_directories(d);
  auto [out, rc] =
      run("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca -keyout " + d +
          "ca.key -out " + d +
          "ca.crt && openssl req -newkey rsa:2048 -nodes "
          "-subj /O=system:masters/CN=intruder -keyout " +
          d + "c.key -out " + d + "c.csr && openssl x509 -req -in " + d + "c.csr -CA " + d +
          "ca.crt -CAkey " + d + "ca.key -CAcreateserial -days 1 -out " + d + "c.crt");
  ASSERT_EQ(rc, 0) << out;
  std::string foreign = cluster->curl("--cert " + d + "c.crt --key " + d + "c.key", "/pods");
  EXPECT_TRUE(foreign == "401" || foreign == "000") << foreign;
  // The API server's own kubelet client certificate (system:masters) may.
  EXPECT_EQ(cluster->curl("--cert " + cluster->server->kubeletClientCert() + " --key " +
                              cluster->server->kubeletClientKey(),
                          "/healthz"),
            "200");
}

// POST /run: the command's output as the body (the API server's kubelet
// client certificate may; it is system:masters).
TEST_F(NodeServerE2E, RunAnswersWithTheCommandsOutput) {
  std::string base = "curl -sk --max-time 60 -X POST -w ' %{http_code}' --cert " +
                     cluster->server->kubeletClientCert() + " --key " +
                     cluster->server->kubeletClientKey() +
                     " 'https://127.0.0.1:" + std::to_string(cluster->port);
  auto [out, rc] = run(base + "/run/default/talker/side?cmd=echo+ran%20in++side'");
  EXPECT_EQ(out, "ran in side\n 200") << rc;
  // A command that fails: 500 with what it printed.
  std::tie(out, rc) = run(base + "/run/default/talker/side?cmd=ls+/nonexistent'");
  EXPECT_TRUE(out.ends_with(" 500") && out.find("/nonexistent") != std::string::npos) << out;
  std::tie(out, rc) = run(base + "/run/default/talker/nosuch?cmd=true'");
  EXPECT_EQ(out, "container \"nosuch\" not found in pod \"talker\"\n 404");
  std::tie(out, rc) = run(base + "/run/default/nosuch/app?cmd=true'");
  EXPECT_EQ(out, "pod does not exist\n 404");
  // GET is not how /run is asked.
  EXPECT_EQ(cluster->curl("--cert " + cluster->server->kubeletClientCert() + " --key " +
                              cluster->server->kubeletClientKey(),
                          "/run/default/talker/side?cmd=true"),
            "405");
}

// Last: what the agent asked the API server on the way (the curl case's token
// by TokenReview, its user by SubjectAccessReview with the kubelet's
// attributes), and nothing it sent was refused by the schema checks.
TEST_F(NodeServerE2E, TheAgentAskedTheApiServerAndSentNothingTheSchemaRefuses) {
  if (cluster->curl("-H 'Authorization: Bearer proxy-token'", "/healthz") != "200") {
    ADD_FAILURE() << "proxy-token not allowed /healthz\n" << cluster->agentLog();
  }
  auto reviews = cluster->server->control("reviews", "", false);
  ASSERT_TRUE(reviews) << reviews.error().message();
  EXPECT_NE(reviews->find(R"("username": "proxy-reader")"), std::string::npos) << *reviews;
  EXPECT_NE(reviews->find(R"("user": "proxy-reader")"), std::string::npos) << *reviews;
  EXPECT_NE(reviews->find(R"("resource": "nodes")"), std::string::npos) << *reviews;
  EXPECT_NE(reviews->find(R"("name": "node1")"), std::string::npos) << *reviews;
  EXPECT_EQ(cluster->server->control("violations", "", false).value_or("?"), "[]")
      << "the agent sent what the schema refuses";
}

}  // namespace
}  // namespace kernelet
