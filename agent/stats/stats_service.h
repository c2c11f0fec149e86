#pragma once
// The stats side of the node server: owns what the pages share across
// requests (the CPU samples, the disk-usage cache) and one thread that builds
// the pages, so no request reads cgroups on the server's thread. The same
// thread sweeps every cgroup every `cpu_sweep` (10 s, cadvisor's housekeeping)
// so that usageNanoCores has a recent base sample even for the first scrape
// after a quiet spell.

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "agent/stats/cpu_sampler.h"
#include "agent/stats/fs_usage.h"
#include "agent/stats/metrics.h"
#include "agent/stats/summary.h"
#include "agent/status/snapshot.h"
#include "sys/stoppable_thread.h"

namespace kernelet::agent::stats {

struct StatsContext {
  const SnapshotPublisher* snapshots = nullptr;  // required; outlives the endpoints
  // Node name, cgroup mount, /proc, ROOT, POD_LOG_DIR, image store, boot time
  // (SummarySources::node_start; left zero: read from /proc/stat's btime).
  SummarySources sources;
  // The agent's own metrics; null: kubeletMetrics()'s registries.
  const Registry* registry = nullptr;
  const Registry* probe_registry = nullptr;
  std::chrono::milliseconds disk_interval = std::chrono::seconds(30);
  std::chrono::milliseconds cpu_sweep = std::chrono::seconds(10);
  // Requests waiting for the stats thread beyond this are answered 503.
  size_t max_queued = 16;
};

class StatsService {
 public:
  explicit StatsService(StatsContext ctx);
  ~StatsService();
  StatsService(const StatsService&) = delete;
  StatsService& operator=(const StatsService&) = delete;

  // Starts the disk-usage thread and the stats thread.
  void start();
  // Runs `job` on the stats thread. False (job not taken) if too many wait.
  // Jobs still queued at destruction are run with `cancelled` true.
  using Job = std::function<void(bool cancelled)>;
  bool post(Job job);

  // The pages, built on the calling thread (the stats thread's jobs call them).
  Summary summary();
  std::string summaryText(bool only_cpu_and_memory);
  std::string resourceText();
  std::string cadvisorText();
  std::string agentText();
  std::string probesText();

  FsUsageCache& disk() { return *disk_; }
  CpuSampler& sampler() { return sampler_; }

 private:
  void run();
  std::vector<std::string> diskTargets() const;

  StatsContext ctx_;
  CpuSampler sampler_;
  std::unique_ptr<FsUsageCache> disk_;
  std::deque<Job> jobs_;    // guarded by thread_.mutex()
  StoppableThread thread_;  // last: stopped first
};

}  // namespace kernelet::agent::stats
