// API client costs, not timed tests:
//   1. decoding a watch stream of 10,000 Pod events (each object fully parsed),
//      against Python's json module on the same bytes, in MB/s and as a ratio;
//   2. a status PATCH round trip to the test API server on loopback: the
//      median wall time and the client thread's CPU time per request.
//
//   apiclient_bench [--events N] [--patches N]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "apiclient/api_client.h"
#include "apiclient/watch_stream.h"
#include "bench/bench_util.h"
#include "support/api_server.h"

namespace {

using namespace kernelet;
using Clock = std::chrono::steady_clock;

std::string podEvent(int i) {
  std::string n = std::to_string(i);
  return R"({"type":"MODIFIED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-)" +
         n + R"(","namespace":"default","uid":"6f1c2a4e-0000-4000-8000-)" + n +
         R"(","resourceVersion":")" + std::to_string(1000 + i) +
         R"(","creationTimestamp":"2026-01-01T00:00:00Z","labels":{"app":"web","tier":"front"},"annotations":{"kubernetes.io/config.seen":"2026-01-01T00:00:00.000000000Z"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-5d8f","uid":"0b7e","controller":true}]},"spec":{"nodeName":"node1","restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","containers":[{"name":"app","image":"registry.example.com/web:1.2.3","ports":[{"containerPort":8080,"protocol":"TCP"}],"env":[{"name":"MODE","value":"production"},{"name":"POD_IP","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}}],"resources":{"requests":{"cpu":"250m","memory":"64Mi"},"limits":{"cpu":"1","memory":"256Mi"}},"volumeMounts":[{"name":"data","mountPath":"/data"}],"terminationMessagePath":"/dev/termination-log","imagePullPolicy":"IfNotPresent"}],"volumes":[{"name":"data","emptyDir":{}}]},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2026-01-01T00:00:05Z"},{"type":"ContainersReady","status":"True","lastTransitionTime":"2026-01-01T00:00:05Z"},{"type":"PodScheduled","status":"True","lastTransitionTime":"2026-01-01T00:00:00Z"}],"hostIP":"10.0.0.5","podIP":"10.88.0.)" +
         std::to_string(i % 250) +
         R"(","startTime":"2026-01-01T00:00:00Z","containerStatuses":[{"name":"app","state":{"running":{"startedAt":"2026-01-01T00:00:04Z"}},"ready":true,"restartCount":0,"image":"registry.example.com/web:1.2.3","imageID":"registry.example.com/web@sha256:9b2a","containerID":"kernelet://4f3e","started":true}],"qosClass":"Burstable"}}})"
         "\n";
}

double threadCpu() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  int events = 10000, patches = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--events") events = std::stoi(argv[i + 1]);
    if (a == "--patches") patches = std::stoi(argv[i + 1]);
  }
  std::string dir = "/tmp/kernelet-apiclient-bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  // 1. Watch decode.
  std::string stream;
  for (int i = 0; i < events; i++) {
    stream += podEvent(i);
  }
  std::ofstream(dir + "/watch.jsonl") << stream;
  double mb = static_cast<double>(stream.size()) / (1 << 20);
  std::vector<double> ours;
  for (int round = 0; round < 5; round++) {
    size_t decoded = 0;
    auto t0 = Clock::now();
    // Each event's object is decoded whole (a DOM, as json.loads builds a dict).
    apiclient::WatchStream ws([&](apiclient::WatchEvent e) {
      decoded += e.parsed != nullptr && e.parsed->IsObject() ? 1 : 0;
    });
    // Fed in 16 KiB pieces, as a socket delivers it.
    for (size_t at = 0; at < stream.size(); at += 16384) {
      (void)ws.feed(std::string_view(stream).substr(at, 16384));
    }
    (void)ws.finish();
    ours.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    if (decoded != static_cast<size_t>(events)) {
      std::fprintf(stderr, "decoded %zu of %d events\n", decoded, events);
      return 1;
    }
  }
  std::ofstream(dir + "/py.py") << "import json, sys, time\n"
                                   "data = open(sys.argv[1], 'rb').read()\n"
                                   "best = []\n"
                                   "for _ in range(5):\n"
                                   "    t = time.perf_counter()\n"
                                   "    n = 0\n"
                                   "    for line in data.splitlines():\n"
                                   "        e = json.loads(line)\n"
                                   "        n += e['object']['metadata']['resourceVersion'] != ''\n"
                                   "    best.append(time.perf_counter() - t)\n"
                                   "best.sort()\n"
                                   "print(best[len(best) // 2])\n";
  bench::runCommand(
      {"sh", "-c", "python3 " + dir + "/py.py " + dir + "/watch.jsonl > " + dir + "/py.out"});
  double py = std::stod(bench::slurp(dir + "/py.out"));
  double our = bench::median(ours);
  std::printf("watch stream decode, %d Pod events (%.1f MiB), median of 5:\n", events, mb);
  std::printf("  kernelet (WatchStream + RapidJSON)  %7.1f MiB/s  (%.3f s)\n", mb / our, our);
  std::printf("  python3 json.loads                  %7.1f MiB/s  (%.3f s)\n", mb / py, py);
  std::printf("  ratio kernelet/python: %.1fx (target >= 5x)\n", py / our);

  // 2. Status PATCH round trips.
  auto server = testing::ApiServer::start(dir + "/server", {});
  if (!server) {
    std::fprintf(stderr, "%s\n", server.error().message().c_str());
    return 1;
  }
  apiclient::ClusterAccess access;
  access.server = server->url();
  access.ca_pem = bench::slurp(server->caFile());
  access.token = "admin-token";
  auto client = apiclient::ApiClient::create(access, {.qps = 0});
  if (!client) {
    return 1;
  }
  auto& c = **client;
  std::string pods = apiclient::resourcePath("v1", "pods", "default");
  auto created = c.create(pods, R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
      "spec":{"nodeName":"node1","containers":[{"name":"c","image":"busybox"}]}})");
  if (!created) {
    std::fprintf(stderr, "%s\n", created.error().str().c_str());
    return 1;
  }
  std::vector<double> wall, cpu;
  for (int i = 0; i < patches; i++) {
    std::string patch = R"({"status":{"phase":"Running","conditions":[{"type":"Ready","status":")" +
                        std::string(i % 2 ? "True" : "False") + R"("}]}})";
    double c0 = threadCpu();
    auto t0 = Clock::now();
    auto r = c.patch(pods + "/p/status", apiclient::PatchType::kStrategicMerge, patch);
    wall.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    cpu.push_back((threadCpu() - c0) * 1000);
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error().str().c_str());
      return 1;
    }
  }
  std::printf("status PATCH round trip on loopback (test API server in Python), %d requests:\n",
              patches);
  std::printf("  wall median %.2f ms (mostly the Python server), client CPU median %.3f ms\n",
              bench::median(wall), bench::median(cpu));
  std::printf("  connections opened: %zu (keep-alive)\n", c.pool().dials());
  return 0;
}
