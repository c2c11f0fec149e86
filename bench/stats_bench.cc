// /stats/summary for N pods (default 100) on real cgroup v2 groups, each pod
// with a container group holding one sleeping process:
//   answer:  a GET through the endpoint's handler until its Responder runs,
//            served from the last housekeeping's Summary (what a scraper sees)
//   read:    reading every group and building the Summary and its JSON (what
//            housekeeping does every 10 s, and a request when the pods changed)
//   peer:    `cat` of the same interface files in one process
// Runs in the test VM: bench/run-stats [N].
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <iostream>

#include "agent/stats/cpu_sampler.h"
#include "agent/stats/metrics_text.h"
#include "agent/stats/stats_endpoints.h"
#include "agent/stats/summary.h"
#include "bench/bench_util.h"
#include "cgroups/cgroups.h"

using namespace kernelet;
using namespace kernelet::agent;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double medianOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int pods = argc > 1 ? std::atoi(argv[1]) : 100;
  const int rounds = 21;
  std::string helpers = KERNELET_HELPERS_DIR;
  auto h = cgroups::detect();
  if (!h || !cgroups::requireControllers(*h)) {
    std::cerr << "stats_bench: needs cgroup v2 with cpu, memory, pids (run in the VM)\n";
    return 1;
  }
  std::string root = "kernelet-stats-bench-" + std::to_string(::getpid());
  if (!cgroups::ensureQosTree(h->mount, root)) {
    std::cerr << "stats_bench: cannot create the QoS tree\n";
    return 1;
  }
  NodeSnapshot snap;
  std::vector<pid_t> pids;
  std::vector<std::string> files;
  for (int i = 0; i < pods; ++i) {
    std::string uid = "u" + std::to_string(i);
    std::string pod_cg = cgroups::podCgroupPath(root, cgroups::QosClass::kBurstable, uid);
    auto pod = cgroups::Cgroup::create(h->mount, pod_cg);
    if (!pod || !pod->enableControllers({"cpu", "memory", "pids"})) {
      std::cerr << "stats_bench: cannot create " << pod_cg << "\n";
      return 1;
    }
    auto ctr = cgroups::Cgroup::create(h->mount, pod_cg + "/c" + std::to_string(i));
    if (!ctr) {
      return 1;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execl((helpers + "/kt-sleep").c_str(), "kt-sleep", nullptr);
      ::_exit(127);
    }
    if (!ctr->addProcess(pid)) {
      std::cerr << "stats_bench: cannot move a process into its group\n";
    }
    pids.push_back(pid);
    PodSnapshot p;
    p.uid = uid;
    p.namespace_ = "bench";
    p.name = "pod-" + std::to_string(i);
    p.cgroup_path = pod_cg;
    p.status.phase = "Running";
    ContainerStatus cs;
    cs.name = "app";
    cs.container_id = "kernelet://c" + std::to_string(i);
    cs.state.kind = ContainerState::Kind::kRunning;
    cs.state.started_at = "2026-11-30T10:00:00Z";
    p.status.container_statuses.push_back(cs);
    snap.pods[uid] = std::make_shared<PodSnapshot>(p);
    for (const std::string& g : {pod_cg, pod_cg + "/c" + std::to_string(i)}) {
      // What the reader reads of each group.
      for (const char* f : {"cpu.stat", "memory.current", "memory.max", "memory.stat",
                            "pids.current", "cpu.pressure", "memory.pressure", "io.pressure",
                            "memory.swap.current", "memory.swap.max"}) {
        files.push_back(h->mount + "/" + g + "/" + f);
      }
    }
    files.push_back(h->mount + "/" + pod_cg + "/cgroup.procs");
    files.push_back(h->mount + "/" + pod_cg + "/c" + std::to_string(i) + "/cgroup.procs");
    files.push_back("/proc/" + std::to_string(pid) + "/net/dev");
  }

  stats::SummarySources src;
  src.node_name = "vm";
  src.cgroup_mount = h->mount;
  src.root_dir = "/tmp";
  src.pod_log_dir = "/tmp";
  stats::CpuSampler sampler;
  std::vector<double> summary_ms, cat_ms, answer_ms;
  size_t bytes = 0;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = Clock::now();
    std::string json = stats::summaryJson(
        stats::buildSummary(src, snap, sampler, nullptr, std::chrono::system_clock::now()));
    auto t1 = Clock::now();
    std::vector<std::string> cat{"cat"};
    cat.insert(cat.end(), files.begin(), files.end());
    (void)bench::runCommand(cat, "/dev/null");
    auto t2 = Clock::now();
    summary_ms.push_back(ms(t1 - t0));
    cat_ms.push_back(ms(t2 - t1));
    bytes = json.size();
  }

  // Through the endpoint, as the server calls it, after the first housekeeping.
  SnapshotPublisher pub;
  for (const auto& [uid, p] : snap.pods) {
    pub.update(*p);
  }
  pub.publish();
  stats::StatsContext ctx;
  ctx.snapshots = &pub;
  ctx.sources = src;
  server::Endpoints endpoints;
  auto svc = stats::addStatsEndpoints(endpoints, ctx);
  size_t answered_bytes = 0;
  for (int r = 0; r < rounds + 1; ++r) {
    std::promise<server::Response> done;
    auto answer = done.get_future();
    auto t0 = Clock::now();
    endpoints.stats_summary(server::Request{.method = "GET"},
                            [&done](server::Response resp) { done.set_value(std::move(resp)); });
    server::Response resp = answer.get();
    auto t1 = Clock::now();
    if (resp.status != 200) {
      std::cerr << "stats_bench: /stats/summary answered " << resp.status << "\n";
      return 1;
    }
    answered_bytes = resp.body.size();
    if (r > 0) {  // the first may have waited for the first housekeeping
      answer_ms.push_back(ms(t1 - t0));
    }
  }
  double s = medianOf(summary_ms), c = medianOf(cat_ms), a = medianOf(answer_ms);
  std::printf("stats_bench: %d pods, %zu files, median of %d rounds\n", pods, files.size(), rounds);
  std::printf(
      "  answer: GET /stats/summary through the handler (%zu bytes): %.2f ms  (target < 50 ms)\n",
      answered_bytes, a);
  std::printf(
      "  read:   every group read + Summary + JSON (%zu bytes):     %.1f ms  (housekeeping, every "
      "10 s)\n",
      bytes, s);
  std::printf(
      "  peer:   cat of the same files (one fork+exec):             %.1f ms  -> read/cat = %.2f\n",
      c, s / c);
  for (pid_t p : pids) {
    ::kill(p, SIGKILL);
    ::waitpid(p, nullptr, 0);
  }
  if (auto top = cgroups::Cgroup::open(h->mount, root)) {
    (void)top->remove();  // best effort: the VM goes away after the run
  }
  return a < 50 ? 0 : 2;
}
