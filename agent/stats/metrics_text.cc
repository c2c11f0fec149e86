#include "agent/stats/metrics_text.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <map>
#include <memory>

#include "agent/stats/kernel_files.h"
#include "sys/fileio.h"

namespace kernelet::agent::stats {

namespace {

int64_t millis(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

double seconds(Clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Families collected first and written sorted by name.
class Families {
 public:
  struct Line {
    Labels labels;
    double value;
    std::optional<int64_t> ts;
  };
  void declare(const std::string& name, const std::string& help, MetricType type) {
    auto& f = families_[name];
    f.help = help;
    f.type = type;
  }
  void add(const std::string& name, Labels labels, double value,
           std::optional<int64_t> ts = std::nullopt) {
    families_[name].lines.push_back({std::move(labels), value, ts});
  }
  std::string text() const {
    TextWriter w;
    for (const auto& [name, f] : families_) {
      if (f.lines.empty()) {
        continue;
      }
      w.family(name, f.help, f.type);
      for (const auto& l : f.lines) {
        w.sample(name, l.labels, l.value, l.ts);
      }
    }
    return w.take();
  }

 private:
  struct Family {
    std::string help;
    MetricType type = MetricType::kUntyped;
    std::vector<Line> lines;
  };
  std::map<std::string, Family> families_;
};

double coreSeconds(const CpuStats& c) {
  return static_cast<double>(c.usage_core_nano_seconds.value_or(0)) / 1e9;
}

}  // namespace

std::string resourceMetricsText(const Summary& summary, bool scrape_error) {
  Families f;
  f.declare("node_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the node in core-seconds", MetricType::kCounter);
  f.declare("node_memory_working_set_bytes", "Current working set of the node in bytes",
            MetricType::kGauge);
  f.declare("container_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the container in core-seconds", MetricType::kCounter);
  f.declare("container_memory_working_set_bytes", "Current working set of the container in bytes",
            MetricType::kGauge);
  f.declare("container_start_time_seconds",
            "Start time of the container since unix epoch in seconds", MetricType::kGauge);
  f.declare("pod_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the pod in core-seconds", MetricType::kCounter);
  f.declare("pod_memory_working_set_bytes", "Current working set of the pod in bytes",
            MetricType::kGauge);
  f.declare("scrape_error", "1 if there was an error while getting container metrics, 0 otherwise",
            MetricType::kGauge);
  const NodeStats& n = summary.node;
  if (n.cpu && n.cpu->usage_core_nano_seconds) {
    f.add("node_cpu_usage_seconds_total", {}, coreSeconds(*n.cpu), millis(n.cpu->time));
  }
  if (n.memory && n.memory->working_set_bytes) {
    f.add("node_memory_working_set_bytes", {}, static_cast<double>(*n.memory->working_set_bytes),
          millis(n.memory->time));
  }
  for (const auto& p : summary.pods) {
    Labels pod_labels{{"namespace", p.namespace_}, {"pod", p.name}};
    for (const auto& c : p.containers) {
      Labels labels{{"container", c.name}, {"namespace", p.namespace_}, {"pod", p.name}};
      if (c.cpu && c.cpu->usage_core_nano_seconds) {
        f.add("container_cpu_usage_seconds_total", labels, coreSeconds(*c.cpu),
              millis(c.cpu->time));
      }
      if (c.memory && c.memory->working_set_bytes) {
        f.add("container_memory_working_set_bytes", labels,
              static_cast<double>(*c.memory->working_set_bytes), millis(c.memory->time));
      }
      if (c.start_time != Clock::time_point{}) {
        f.add("container_start_time_seconds", labels, seconds(c.start_time), millis(c.start_time));
      }
    }
    if (p.cpu && p.cpu->usage_core_nano_seconds) {
      f.add("pod_cpu_usage_seconds_total", pod_labels, coreSeconds(*p.cpu), millis(p.cpu->time));
    }
    if (p.memory && p.memory->working_set_bytes) {
      f.add("pod_memory_working_set_bytes", pod_labels,
            static_cast<double>(*p.memory->working_set_bytes), millis(p.memory->time));
    }
  }
  f.add("scrape_error", {}, scrape_error ? 1 : 0);
  return f.text();
}

namespace {

void cadvisorRows(Families& f, const Labels& labels, const std::optional<CpuStats>& cpu,
                  const std::optional<MemoryStats>& mem) {
  if (cpu && cpu->usage_core_nano_seconds) {
    Labels with_cpu = labels;
    with_cpu.insert(with_cpu.begin() + 1, {"cpu", "total"});
    f.add("container_cpu_usage_seconds_total", with_cpu, coreSeconds(*cpu), millis(cpu->time));
  }
  if (mem) {
    auto ts = millis(mem->time);
    f.add("container_memory_usage_bytes", labels, static_cast<double>(mem->usage_bytes.value_or(0)),
          ts);
    f.add("container_memory_working_set_bytes", labels,
          static_cast<double>(mem->working_set_bytes.value_or(0)), ts);
    f.add("container_memory_rss", labels, static_cast<double>(mem->rss_bytes.value_or(0)), ts);
  }
}

}  // namespace

std::string cadvisorMetricsText(const Summary& summary, const NodeSnapshot& snapshot) {
  Families f;
  f.declare("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.",
            MetricType::kCounter);
  f.declare("container_memory_usage_bytes",
            "Current memory usage in bytes, including all memory regardless of when it was "
            "accessed",
            MetricType::kGauge);
  f.declare("container_memory_working_set_bytes", "Current working set in bytes.",
            MetricType::kGauge);
  f.declare("container_memory_rss", "Size of RSS in bytes.", MetricType::kGauge);
  f.declare("container_fs_usage_bytes",
            "Number of bytes that are consumed by the container on this filesystem.",
            MetricType::kGauge);
  f.declare("container_network_receive_bytes_total", "Cumulative count of bytes received",
            MetricType::kCounter);
  f.declare("container_network_receive_errors_total",
            "Cumulative count of errors encountered while receiving", MetricType::kCounter);
  f.declare("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted",
            MetricType::kCounter);
  f.declare("container_network_transmit_errors_total",
            "Cumulative count of errors encountered while transmitting", MetricType::kCounter);
  for (const auto& p : summary.pods) {
    auto snap = snapshot.pods.find(p.uid);
    std::string pod_id =
        snap == snapshot.pods.end() ? std::string() : "/" + snap->second->cgroup_path;
    // cadvisor's label order: container, id, image, name, namespace, pod.
    Labels pod_labels{{"container", ""},           {"id", pod_id}, {"image", ""}, {"name", ""},
                      {"namespace", p.namespace_}, {"pod", p.name}};
    cadvisorRows(f, pod_labels, p.cpu, p.memory);
    if (p.network) {
      auto ts = millis(p.network->time);
      for (const auto& i : p.network->interfaces) {
        Labels l = pod_labels;
        l.insert(l.begin() + 2, {"interface", i.name});
        f.add("container_network_receive_bytes_total", l,
              static_cast<double>(i.rx_bytes.value_or(0)), ts);
        f.add("container_network_receive_errors_total", l,
              static_cast<double>(i.rx_errors.value_or(0)), ts);
        f.add("container_network_transmit_bytes_total", l,
              static_cast<double>(i.tx_bytes.value_or(0)), ts);
        f.add("container_network_transmit_errors_total", l,
              static_cast<double>(i.tx_errors.value_or(0)), ts);
      }
    }
    for (const auto& c : p.containers) {
      Labels labels{{"container", c.name}, {"id", pod_id + "/" + c.id}, {"image", c.image},
                    {"name", c.id},        {"namespace", p.namespace_}, {"pod", p.name}};
      cadvisorRows(f, labels, c.cpu, c.memory);
      if (c.rootfs && c.rootfs->used_bytes) {
        f.add("container_fs_usage_bytes", labels, static_cast<double>(*c.rootfs->used_bytes),
              millis(c.rootfs->time));
      }
    }
  }
  return f.text();
}

namespace {

std::string containerState(const ContainerStatus& cs) {
  switch (cs.state.kind) {
    case ContainerState::Kind::kRunning:
      return "running";
    case ContainerState::Kind::kTerminated:
      return "exited";
    case ContainerState::Kind::kWaiting:
      return cs.container_id.empty() ? "" : "created";
    case ContainerState::Kind::kNone:
      break;
  }
  return "";
}

size_t countFds(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (!d) {
    return 0;
  }
  size_t n = 0;
  while (dirent* e = readdir(d.get())) {
    if (e->d_name[0] != '.') {
      ++n;
    }
  }
  return n > 0 ? n - 1 : 0;  // the fd opendir itself holds
}

void processMetrics(Families& f, const std::string& proc) {
  f.declare("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
            MetricType::kCounter);
  f.declare("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::kGauge);
  f.declare("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::kGauge);
  f.declare("process_open_fds", "Number of open file descriptors.", MetricType::kGauge);
  f.declare("process_max_fds", "Maximum number of open file descriptors.", MetricType::kGauge);
  f.declare("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
            MetricType::kGauge);
  auto stat_text = readFile(proc + "/self/stat");
  auto stat = stat_text ? parseProcPidStat(*stat_text) : std::nullopt;
  double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  if (stat && hz > 0) {
    f.add("process_cpu_seconds_total", {},
          static_cast<double>(stat->utime_ticks + stat->stime_ticks) / hz);
    f.add("process_resident_memory_bytes", {},
          static_cast<double>(stat->rss_pages) * static_cast<double>(sysconf(_SC_PAGESIZE)));
    f.add("process_virtual_memory_bytes", {}, static_cast<double>(stat->vsize_bytes));
    if (auto proc_stat = readFile(proc + "/stat")) {
      auto kv = parseKeyValues(*proc_stat);
      if (auto it = kv.find("btime"); it != kv.end()) {
        f.add("process_start_time_seconds", {},
              static_cast<double>(it->second) + static_cast<double>(stat->start_ticks) / hz);
      }
    }
  }
  f.add("process_open_fds", {}, static_cast<double>(countFds(proc + "/self/fd")));
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    f.add("process_max_fds", {}, static_cast<double>(rl.rlim_cur));
  }
}

}  // namespace

std::string agentMetricsText(const NodeSnapshot& snapshot, const Registry& registry,
                             const std::string& proc) {
  Families f;
  f.declare("kubelet_running_pods", "Number of pods that have a running pod sandbox",
            MetricType::kGauge);
  f.declare("kubelet_running_containers", "Number of containers currently running",
            MetricType::kGauge);
  size_t running_pods = 0;
  std::map<std::string, size_t> states{{"created", 0}, {"exited", 0}, {"running", 0}};
  for (const auto& [uid, pod] : snapshot.pods) {
    bool finished = pod->status.phase == "Succeeded" || pod->status.phase == "Failed";
    if (!pod->cgroup_path.empty() && !finished) {
      ++running_pods;
    }
    for (const auto* list :
         {&pod->status.init_container_statuses, &pod->status.container_statuses}) {
      for (const auto& cs : *list) {
        std::string state = containerState(cs);
        if (!state.empty()) {
          ++states[state];
        }
      }
    }
  }
  f.add("kubelet_running_pods", {}, static_cast<double>(running_pods));
  for (const auto& [state, n] : states) {
    f.add("kubelet_running_containers", {{"container_state", state}}, static_cast<double>(n));
  }
  std::string kubelet = f.text();
  Families p;
  processMetrics(p, proc);
  TextWriter w;
  registry.write(w);
  return kubelet + w.take() + p.text();
}

}  // namespace kernelet::agent::stats
