#pragma once
// The stats side of the node server: owns what the pages share across
// requests (the CPU samples, the disk-usage cache, the last Summary) and one
// thread that reads the cgroups, so no request does it on the server's thread.
//
// As cadvisor, the reading is housekeeping, not per request: the stats thread
// builds a Summary every `housekeeping` (10 s, cadvisor's interval), and the
// pages are served from the last one (every figure carries the time it was
// read). A request builds anew only when the last Summary is older than
// `max_age`, or the pods changed (a new snapshot) and it is older than
// `min_age`: so scraping every second costs the node nothing beyond
// writing the page, and reading 100 pods' groups (slow under emulation) is
// never paid per request.

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
  std::chrono::milliseconds housekeeping = std::chrono::seconds(10);
  std::chrono::milliseconds max_age = std::chrono::seconds(15);
  std::chrono::milliseconds min_age = std::chrono::seconds(1);
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

  // The pages. Only on the stats thread (from a post()ed job): current()
  // and the pages built on it use the thread's own last Summary.
  // summary(): a Summary read now; current(): the last one if fresh enough
  // (see above), else one read now and kept.
  Summary summary();
  std::shared_ptr<const Summary> current();
  std::string summaryText(bool only_cpu_and_memory);
  std::string resourceText();
  std::string cadvisorText();
  std::string agentText();
  std::string probesText();

  FsUsageCache& disk() { return *disk_; }
  CpuSampler& sampler() { return sampler_; }

 private:
  void run();
  void keep(std::shared_ptr<const NodeSnapshot> snap);
  std::vector<std::string> diskTargets() const;

  StatsContext ctx_;
  CpuSampler sampler_;
  std::unique_ptr<FsUsageCache> disk_;
  std::deque<Job> jobs_;  // guarded by thread_.mutex()
  // The stats thread's own (only it reads and writes them):
  std::shared_ptr<const Summary> last_;
  std::shared_ptr<const NodeSnapshot> last_snapshot_;
  std::chrono::steady_clock::time_point last_built_;
  // /stats/summary's JSON of last_ (whole, and only_cpu_and_memory), made on
  // the first request after each build: scrapers between builds (metrics-server
  // every 15 s, Prometheus) get the same text without serializing 100 pods again.
  std::shared_ptr<const Summary> text_of_;
  std::string text_[2];
  StoppableThread thread_;  // last: stopped first
};

}  // namespace kernelet::agent::stats
