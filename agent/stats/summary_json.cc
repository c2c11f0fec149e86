// The Summary as Go's encoding/json writes the v1alpha1 types: fields in
// the Go structs' order, omitempty pointers left out when nil, metav1.Time
// at seconds in UTC.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdio>
#include <ctime>

#include "agent/stats/summary.h"

namespace kernelet::agent::stats {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void time(Writer& w, const char* key, Clock::time_point t) {
  w.Key(key);
  if (t == Clock::time_point{}) {
    w.Null();
    return;
  }
  std::string s = rfc3339(t);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
}

void str(Writer& w, const char* key, const std::string& v) {
  w.Key(key);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}

template <typename T>
void opt(Writer& w, const char* key, const std::optional<T>& v) {
  if (!v) {
    return;
  }
  w.Key(key);
  if constexpr (std::is_signed_v<T>) {
    w.Int64(*v);
  } else {
    w.Uint64(*v);
  }
}

// A float64 as Go's encoding/json writes one: an integral value without a
// fraction ("0", not rapidjson's "0.0"), else the shortest form that reads
// back the same (both write 0.12 as "0.12"). PSI averages are percentages
// with two decimals, far from where Go would switch to an exponent.
void float64(Writer& w, const char* key, double v) {
  w.Key(key);
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::string s = std::to_string(static_cast<int64_t>(v));
    w.RawValue(s.c_str(), s.size(), rapidjson::kNumberType);
    return;
  }
  w.Double(v);
}

void psiData(Writer& w, const char* key, const PressureLine& d) {
  w.Key(key);
  w.StartObject();
  w.Key("total");
  w.Uint64(d.total);
  float64(w, "avg10", d.avg10);
  float64(w, "avg60", d.avg60);
  float64(w, "avg300", d.avg300);
  w.EndObject();
}

// PSIStats: Full before Some, the Go struct's order.
void psi(Writer& w, const std::optional<PsiStats>& p) {
  if (!p) {
    return;
  }
  w.Key("psi");
  w.StartObject();
  psiData(w, "full", p->full);
  psiData(w, "some", p->some);
  w.EndObject();
}

void io(Writer& w, const std::optional<IoStats>& i) {
  if (!i) {
    return;
  }
  w.Key("io");
  w.StartObject();
  time(w, "time", i->time);
  psi(w, i->psi);
  w.EndObject();
}

void swap(Writer& w, const std::optional<SwapStats>& s) {
  if (!s) {
    return;
  }
  w.Key("swap");
  w.StartObject();
  time(w, "time", s->time);
  opt(w, "swapAvailableBytes", s->swap_available_bytes);
  opt(w, "swapUsageBytes", s->swap_usage_bytes);
  w.EndObject();
}

void cpu(Writer& w, const std::optional<CpuStats>& c) {
  if (!c) {
    return;
  }
  w.Key("cpu");
  w.StartObject();
  time(w, "time", c->time);
  opt(w, "usageNanoCores", c->usage_nano_cores);
  opt(w, "usageCoreNanoSeconds", c->usage_core_nano_seconds);
  psi(w, c->psi);
  w.EndObject();
}

void memory(Writer& w, const std::optional<MemoryStats>& m) {
  if (!m) {
    return;
  }
  w.Key("memory");
  w.StartObject();
  time(w, "time", m->time);
  opt(w, "availableBytes", m->available_bytes);
  opt(w, "usageBytes", m->usage_bytes);
  opt(w, "workingSetBytes", m->working_set_bytes);
  opt(w, "rssBytes", m->rss_bytes);
  opt(w, "pageFaults", m->page_faults);
  opt(w, "majorPageFaults", m->major_page_faults);
  psi(w, m->psi);
  w.EndObject();
}

// InterfaceStats' fields, inside an object already open.
void interfaceFields(Writer& w, const InterfaceStats& i) {
  str(w, "name", i.name);
  opt(w, "rxBytes", i.rx_bytes);
  opt(w, "rxErrors", i.rx_errors);
  opt(w, "txBytes", i.tx_bytes);
  opt(w, "txErrors", i.tx_errors);
}

void network(Writer& w, const std::optional<NetworkStats>& n) {
  if (!n) {
    return;
  }
  w.Key("network");
  w.StartObject();
  time(w, "time", n->time);
  interfaceFields(w, n->primary);
  if (!n->interfaces.empty()) {
    w.Key("interfaces");
    w.StartArray();
    for (const auto& i : n->interfaces) {
      w.StartObject();
      interfaceFields(w, i);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

void fsFields(Writer& w, const FsStats& f) {
  time(w, "time", f.time);
  opt(w, "availableBytes", f.available_bytes);
  opt(w, "capacityBytes", f.capacity_bytes);
  opt(w, "usedBytes", f.used_bytes);
  opt(w, "inodesFree", f.inodes_free);
  opt(w, "inodes", f.inodes);
  opt(w, "inodesUsed", f.inodes_used);
}

void fs(Writer& w, const char* key, const std::optional<FsStats>& f) {
  if (!f) {
    return;
  }
  w.Key(key);
  w.StartObject();
  fsFields(w, *f);
  w.EndObject();
}

void container(Writer& w, const ContainerStats& c) {
  w.StartObject();
  str(w, "name", c.name);
  time(w, "startTime", c.start_time);
  cpu(w, c.cpu);
  memory(w, c.memory);
  io(w, c.io);
  fs(w, "rootfs", c.rootfs);
  fs(w, "logs", c.logs);
  swap(w, c.swap);
  w.EndObject();
}

void node(Writer& w, const NodeStats& n) {
  w.Key("node");
  w.StartObject();
  str(w, "nodeName", n.node_name);
  if (!n.system_containers.empty()) {
    w.Key("systemContainers");
    w.StartArray();
    for (const auto& c : n.system_containers) {
      container(w, c);
    }
    w.EndArray();
  }
  time(w, "startTime", n.start_time);
  cpu(w, n.cpu);
  memory(w, n.memory);
  io(w, n.io);
  network(w, n.network);
  fs(w, "fs", n.fs);
  if (n.image_fs || n.container_fs) {
    w.Key("runtime");
    w.StartObject();
    fs(w, "imageFs", n.image_fs);
    fs(w, "containerFs", n.container_fs);
    w.EndObject();
  }
  if (n.rlimit) {
    w.Key("rlimit");
    w.StartObject();
    time(w, "time", n.rlimit->time);
    opt(w, "maxpid", n.rlimit->max_pid);
    opt(w, "curproc", n.rlimit->num_of_running_processes);
    w.EndObject();
  }
  swap(w, n.swap);
  w.EndObject();
}

void pod(Writer& w, const PodStats& p) {
  w.StartObject();
  w.Key("podRef");
  w.StartObject();
  str(w, "name", p.name);
  str(w, "namespace", p.namespace_);
  str(w, "uid", p.uid);
  w.EndObject();
  time(w, "startTime", p.start_time);
  w.Key("containers");
  w.StartArray();
  for (const auto& c : p.containers) {
    container(w, c);
  }
  w.EndArray();
  cpu(w, p.cpu);
  memory(w, p.memory);
  io(w, p.io);
  network(w, p.network);
  if (!p.volume.empty()) {
    w.Key("volume");
    w.StartArray();
    for (const auto& v : p.volume) {
      w.StartObject();
      fsFields(w, v.fs);
      str(w, "name", v.name);
      w.EndObject();
    }
    w.EndArray();
  }
  fs(w, "ephemeral-storage", p.ephemeral_storage);
  if (p.process_count) {
    w.Key("process_stats");
    w.StartObject();
    opt(w, "process_count", p.process_count);
    w.EndObject();
  }
  swap(w, p.swap);
  w.EndObject();
}

}  // namespace

std::string rfc3339(Clock::time_point t) {
  time_t secs = Clock::to_time_t(t);
  struct tm tm {};
  if (gmtime_r(&secs, &tm) == nullptr) {
    return {};  // a year beyond what struct tm holds: not a time we write
  }
  char buf[32];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

std::optional<Clock::time_point> parseRfc3339(const std::string& text) {
  struct tm tm {};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) {
    return std::nullopt;
  }
  if (*end == '.') {  // a fraction: metav1.Time drops it too
    ++end;
    while (*end >= '0' && *end <= '9') {
      ++end;
    }
  }
  long offset = 0;
  if (*end == 'Z') {
    ++end;
  } else if (*end == '+' || *end == '-') {
    int hh = 0, mm = 0;
    if (sscanf(end + 1, "%2d:%2d", &hh, &mm) != 2) {
      return std::nullopt;
    }
    offset = (*end == '+' ? 1 : -1) * (hh * 3600L + mm * 60L);
    end += 6;
  } else {
    return std::nullopt;
  }
  if (*end != '\0') {
    return std::nullopt;
  }
  time_t secs = timegm(&tm) - offset;
  return Clock::from_time_t(secs);
}

std::string summaryJson(const Summary& summary) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  node(w, summary.node);
  w.Key("pods");
  w.StartArray();
  for (const auto& p : summary.pods) {
    pod(w, p);
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace kernelet::agent::stats
