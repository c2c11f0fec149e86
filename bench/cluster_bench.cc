// `kernelet run --kubeconfig` against the test API server, in the test VM
// (bench/run-cluster): pod start latency as the Kubernetes SLO defines it
// (created in the API -> every container running, observed by a watch),
// median and p99 over N pods created one after another, beside the standalone
// case (a manifest written -> the agent's "Container started") with the same
// agent; then the API requests per idle pod per minute, lease and node
// status aside.
//
//   cluster_bench --kernelet PATH --fixtures DIR [-n N]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apiclient/api_client.h"
#include "apiclient/objects.h"
#include "apiclient/reflector.h"
#include "bench/bench_util.h"
#include "support/api_server.h"

namespace {

using namespace kernelet;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double nowReal() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

std::string podJson(const std::string& name) {
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
         R"("},"spec":{"nodeName":"node1","terminationGracePeriodSeconds":1,"containers":[{"name":"app","image":"fixtures.kernelet.test/busybox:latest","imagePullPolicy":"Never","command":["kt-sleep","600"]}]}})";
}

int openFds(pid_t pid) {
  std::error_code ec;
  auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
  return ec ? -1 : static_cast<int>(std::distance(it, fs::directory_iterator()));
}

}  // namespace

int main(int argc, char** argv) {
  std::string kernelet, fixtures;
  int n = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--kernelet") kernelet = argv[i + 1];
    if (a == "--fixtures") fixtures = argv[i + 1];
    if (a == "-n") n = std::stoi(argv[i + 1]);
  }
  std::string base = "/tmp/cluster-bench";
  fs::remove_all(base);
  fs::create_directories(base + "/manifests");
  auto server = testing::ApiServer::start(base + "/api", {});
  if (!server) {
    std::fprintf(stderr, "%s\n", server.error().message().c_str());
    return 1;
  }
  bench::runCommand(
      {kernelet, "images", "--root-dir", base + "/root", "import", fixtures + "/oci/busybox"},
      "/dev/null");
  pid_t agent = ::fork();
  if (agent == 0) {
    FILE* f = std::fopen((base + "/agent.log").c_str(), "w");
    ::dup2(fileno(f), 2);
    ::execl(kernelet.c_str(), kernelet.c_str(), "run", "--stop-pods-on-exit", "--port=0",
            "--kubeconfig", server->kubeconfig().c_str(), "--pod-manifest-path",
            (base + "/manifests").c_str(), "--root-dir", (base + "/root").c_str(),
            "--hostname-override", "node1", "--max-pods", "500", "-v", "2", nullptr);
    ::_exit(127);
  }
  apiclient::ClusterAccess access;
  access.server = server->url();
  access.ca_pem = bench::slurp(server->caFile());
  access.token = "admin-token";
  auto client = std::move(*apiclient::ApiClient::create(access, {.qps = 0}));
  for (int i = 0; i < 200 && !client->get("/api/v1/nodes/node1"); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // The user's watch: when is each pod seen with every container running.
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, double> running_at;
  apiclient::ApiLoop net;
  net.start();
  apiclient::Reflector watch(*client, net, {.path = "/api/v1/namespaces/default/pods"},
                             [&](const apiclient::ObjectEvent& e) {
                               bool ready = e.object.find("\"ready\": true") != std::string::npos ||
                                            e.object.find("\"ready\":true") != std::string::npos;
                               bool running =
                                   e.object.find("\"phase\": \"Running\"") != std::string::npos ||
                                   e.object.find("\"phase\":\"Running\"") != std::string::npos;
                               if (ready && running) {
                                 std::lock_guard lock(mu);
                                 running_at.emplace(e.name, nowReal());
                                 cv.notify_all();
                               }
                             });
  watch.start();

  std::vector<double> slo, standalone;
  bench::ProcStat api_start = bench::procStat(agent);
  for (int i = 0; i < n; i++) {
    std::string name = "api" + std::to_string(i);
    double t0 = nowReal();
    auto made = client->create("/api/v1/namespaces/default/pods", podJson(name));
    if (!made) {
      std::fprintf(stderr, "%s\n", made.error().str().c_str());
      return 1;
    }
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(60), [&] { return running_at.contains(name); })) {
      std::fprintf(stderr, "pod %s not seen running\n%s", name.c_str(),
                   bench::slurp(base + "/agent.log").c_str());
      return 1;
    }
    slo.push_back((running_at[name] - t0) * 1000);
    if ((i + 1) % 10 == 0) {  // progress, and whether the latency grows with the pod count
      std::fprintf(stderr, "%d API pods running, the last one in %.1f ms; the agent has %d fds\n",
                   i + 1, slo.back(), openFds(agent));
    }
  }
  double api_cpu = bench::procStat(agent).cpu_seconds - api_start.cpu_seconds;
  bench::AgentLog log(base + "/agent.log");
  for (int i = 0; i < n; i++) {
    std::string name = "static" + std::to_string(i);
    size_t from = log.text().size();
    std::string tmp = base + "/" + name + ".yaml";
    std::ofstream(tmp) << "apiVersion: v1\nkind: Pod\nmetadata: {name: " << name
                       << "}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: "
                          "app\n    image: fixtures.kernelet.test/busybox:latest\n    "
                          "imagePullPolicy: Never\n    command: [kt-sleep, '600']\n";
    double written = bench::timeOfDay();
    fs::rename(tmp, base + "/manifests/" + name + ".yaml");
    double started = -1;
    for (auto deadline = Clock::now() + std::chrono::seconds(60);
         started < 0 && Clock::now() < deadline;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      started = log.startedAt(name + "-node1", from);
    }
    if (started < 0) {
      std::fprintf(stderr, "pod %s not started in 60 s\n%s", name.c_str(), log.text().c_str());
      return 1;
    }
    standalone.push_back((started - written) * 1000);
    if ((i + 1) % 10 == 0) {
      std::fprintf(stderr,
                   "%d static pods started, the last one in %.1f ms; the agent has %d fds\n", i + 1,
                   standalone.back(), openFds(agent));
    }
  }

  // Idle: every pod running, nothing changing. The writer may still be sending
  // what the starts produced (events, mirror statuses); the window opens once
  // 5 s pass without a pod request (at most 3 minutes from now).
  // Every request the server saw, "METHOD path", in order.
  auto requests = [&] {
    std::vector<std::string> out;
    std::string s = server->control("requests", "", false).value_or("");
    for (size_t at = 0; (at = s.find("\"method\": \"", at)) != std::string::npos; at++) {
      std::string method = s.substr(at + 11, s.find('"', at + 11) - at - 11);
      size_t p = s.find("\"path\": \"", at) + 9;
      out.push_back(method + " " + s.substr(p, s.find('"', p) - p));
    }
    return out;
  };
  auto count = [&](const std::vector<std::string>& list, size_t from) {
    int pods = 0, heartbeat = 0;
    for (size_t i = from; i < list.size(); i++) {
      const std::string& r = list[i];
      (r.find("/leases") != std::string::npos || r.find(" /api/v1/nodes") != std::string::npos
           ? heartbeat
           : pods)++;
    }
    return std::pair{pods, heartbeat};
  };
  for (auto give_up = Clock::now() + std::chrono::minutes(3); Clock::now() < give_up;) {
    size_t at = requests().size();
    std::this_thread::sleep_for(std::chrono::seconds(5));
    if (count(requests(), at).first == 0) {
      break;
    }
  }
  size_t mark = requests().size();
  bench::ProcStat before = bench::procStat(agent);
  std::this_thread::sleep_for(std::chrono::seconds(60));
  bench::ProcStat after = bench::procStat(agent);
  auto idle_list = requests();
  auto idle = count(idle_list, mark);
  std::map<std::string, int> by_kind;  // what the pod requests were, for the notes
  for (size_t i = mark; i < idle_list.size(); i++) {
    if (idle_list[i].find("/leases") == std::string::npos &&
        idle_list[i].find(" /api/v1/nodes") == std::string::npos) {
      by_kind[idle_list[i]]++;
    }
  }
  watch.stop();
  ::kill(agent, SIGTERM);
  int st = 0;
  ::waitpid(agent, &st, 0);

  std::printf(
      "pod start latency, %d pods created one after another (SLO: created in the API -> "
      "all containers running, seen by a watch):\n",
      n);
  std::printf("  kernelet run --kubeconfig  median %7.1f ms  p99 %7.1f ms\n", percentile(slo, 0.5),
              percentile(slo, 0.99));
  std::printf(
      "  standalone (manifest -> container started, same agent)  median %7.1f ms  p99 "
      "%7.1f ms\n",
      percentile(standalone, 0.5), percentile(standalone, 0.99));
  std::printf("  the agent's CPU while the API pods started: %.1f ms per pod\n",
              api_cpu * 1000 / n);
  std::printf("idle, %d API pods + %d static pods (mirrored), over 60 s:\n", n, n);
  std::printf("  pod requests: %d (%.3f per idle pod per minute; target 0)\n", idle.first,
              static_cast<double>(idle.first) / (2.0 * n));
  for (const auto& [what, times] : by_kind) {
    std::printf("    %4d x %s\n", times, what.c_str());
  }
  std::printf("  lease and node requests: %d\n", idle.second);
  std::printf("  the agent: %.2f s CPU in the minute (%.2f%% of a core), RSS %.1f MiB\n",
              after.cpu_seconds - before.cpu_seconds,
              (after.cpu_seconds - before.cpu_seconds) / 60 * 100, after.rss_kib / 1024.0);
  return 0;
}
