#include "agent/stats/stats_service.h"

#include "agent/stats/kernel_files.h"
#include "agent/stats/metrics_text.h"
#include "sys/fileio.h"

namespace kernelet::agent::stats {

namespace {

Clock::time_point bootTime(const std::string& proc) {
  auto text = readFile(proc + "/stat");
  if (!text) {
    return {};
  }
  auto kv = parseKeyValues(*text);
  auto it = kv.find("btime");
  if (it == kv.end()) {
    return {};
  }
  return Clock::from_time_t(static_cast<time_t>(it->second));
}

// What only_cpu_and_memory=true leaves: cpu and memory (with their
// pressure) and swap of the node, the pods and their containers, as the
// kubelet's cpu-and-memory summary.
void keepCpuAndMemory(Summary& s) {
  NodeStats& n = s.node;
  n.io.reset();
  n.network.reset();
  n.fs.reset();
  n.image_fs.reset();
  n.container_fs.reset();
  n.rlimit.reset();
  for (auto& sc : n.system_containers) {
    sc.io.reset();
  }
  for (auto& p : s.pods) {
    p.io.reset();
    p.network.reset();
    p.volume.clear();
    p.ephemeral_storage.reset();
    p.process_count.reset();
    for (auto& c : p.containers) {
      c.io.reset();
      c.rootfs.reset();
      c.logs.reset();
    }
  }
}

}  // namespace

StatsService::StatsService(StatsContext ctx) : ctx_(std::move(ctx)) {
  if (ctx_.sources.node_start == Clock::time_point{}) {
    ctx_.sources.node_start = bootTime(ctx_.sources.proc);
  }
  if (!ctx_.registry) {
    ctx_.registry = &kubeletMetrics().registry;
  }
  if (!ctx_.probe_registry) {
    ctx_.probe_registry = &kubeletMetrics().probe_registry;
  }
  disk_ = std::make_unique<FsUsageCache>([this] { return diskTargets(); }, ctx_.disk_interval);
}

StatsService::~StatsService() {
  thread_.join();
  disk_.reset();  // joins the disk thread before the rest goes
  for (auto& job : jobs_) {
    job(/*cancelled=*/true);
  }
}

void StatsService::start() {
  disk_->start();
  thread_.start([this] { run(); });
}

bool StatsService::post(Job job) {
  {
    std::lock_guard lock(thread_.mutex());
    if (jobs_.size() >= ctx_.max_queued) {
      return false;
    }
    jobs_.push_back(std::move(job));
  }
  thread_.notify();
  return true;
}

void StatsService::run() {
  // The first housekeeping at once: the first scrape finds a Summary ready.
  auto next = std::chrono::steady_clock::now();
  while (true) {
    Job job;
    {
      std::unique_lock lock(thread_.mutex());
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
          next - std::chrono::steady_clock::now());
      if (!thread_.waitFor(lock, std::max(wait, std::chrono::milliseconds(0)),
                           [&] { return !jobs_.empty(); })) {
        return;
      }
      if (!jobs_.empty()) {
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
    }
    if (job) {
      job(/*cancelled=*/false);
    } else if (std::chrono::steady_clock::now() >= next) {
      // A request that found no Summary (or one too old) has just read
      // everything: that read is this round's, not one to repeat at once.
      if (!last_ || std::chrono::steady_clock::now() - last_built_ >= ctx_.housekeeping) {
        keep(ctx_.snapshots->current());
      }
      next = last_built_ + ctx_.housekeeping;
    }
  }
}

void StatsService::keep(std::shared_ptr<const NodeSnapshot> snap) {
  last_ = std::make_shared<const Summary>(
      buildSummary(ctx_.sources, *snap, sampler_, disk_.get(), Clock::now()));
  last_snapshot_ = std::move(snap);
  last_built_ = std::chrono::steady_clock::now();
}

std::shared_ptr<const Summary> StatsService::current() {
  auto snap = ctx_.snapshots->current();
  auto age = std::chrono::steady_clock::now() - last_built_;
  bool changed = snap != last_snapshot_;
  if (!last_ || age > ctx_.max_age || (changed && age > ctx_.min_age)) {
    keep(std::move(snap));
  }
  return last_;
}

std::vector<std::string> StatsService::diskTargets() const {
  std::vector<std::string> out;
  auto snap = ctx_.snapshots->current();
  for (const auto& [uid, pod] : snap->pods) {
    auto t = podDiskTargets(ctx_.sources, *pod);
    out.insert(out.end(), t.begin(), t.end());
  }
  return out;
}

Summary StatsService::summary() {
  auto snap = ctx_.snapshots->current();
  return buildSummary(ctx_.sources, *snap, sampler_, disk_.get(), Clock::now());
}

std::string StatsService::summaryText(bool only_cpu_and_memory) {
  auto s = current();
  if (s != text_of_) {
    text_[0].clear();
    text_[1].clear();
    text_of_ = s;
  }
  std::string& text = text_[only_cpu_and_memory ? 1 : 0];
  if (text.empty()) {
    if (!only_cpu_and_memory) {
      text = summaryJson(*s);
    } else {
      Summary copy = *s;
      keepCpuAndMemory(copy);
      text = summaryJson(copy);
    }
  }
  return text;
}

std::string StatsService::resourceText() {
  auto s = current();
  // The node's own figures missing means the readers failed: tell the scraper.
  bool error = !s->node.cpu || !s->node.memory;
  return resourceMetricsText(*s, error);
}

std::string StatsService::cadvisorText() {
  auto s = current();
  return cadvisorMetricsText(*s, *last_snapshot_);
}

std::string StatsService::agentText() {
  return agentMetricsText(*ctx_.snapshots->current(), *ctx_.registry, ctx_.sources.proc);
}

std::string StatsService::probesText() {
  TextWriter w;
  ctx_.probe_registry->write(w);
  return w.take();
}

}  // namespace kernelet::agent::stats
