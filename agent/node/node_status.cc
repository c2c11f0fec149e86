#include "agent/node/node_status.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "agent/version.h"
#include "apiclient/json_fields.h"
#include "apiclient/quantity.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using apiclient::put;

// publishPressure()'s word: bit 0 memory, 1 disk, 2 pid; -1 until published.
std::atomic<int> published_pressure{-1};

std::string firstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string osImage() {
  std::ifstream in("/etc/os-release");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("PRETTY_NAME=")) {
      std::string v = line.substr(12);
      if (v.size() >= 2 && v.front() == '"') {
        v = v.substr(1, v.size() - 2);
      }
      return v;
    }
  }
  return "Linux";
}

// MemTotal and MemAvailable in bytes, from one read of /proc/meminfo (both
// come first in it).
std::pair<int64_t, int64_t> memTotalAndAvailable() {
  std::ifstream in("/proc/meminfo");
  std::string k, unit;
  int64_t kib = 0, total = 0, available = 0;
  while (in >> k >> kib >> unit && (total == 0 || available == 0)) {
    if (k == "MemTotal:") {
      total = kib * 1024;
    } else if (k == "MemAvailable:") {
      available = kib * 1024;
    }
  }
  return {total, available};
}

std::string q(int64_t v, apiclient::Quantity::Format f) {
  return apiclient::Quantity::fromInt(v, f).str();
}

void resources(Writer& w, const char* key, const NodeFacts& f, bool allocatable) {
  using F = apiclient::Quantity::Format;
  w.Key(key);
  w.StartObject();
  const NodeResources& r = f.resources;
  put(w, "cpu",
      apiclient::Quantity::fromMilli(allocatable ? r.allocatable_milli_cpu : r.capacity_milli_cpu)
          .str());
  // Memory and storage in Ki, as the kubelet reports them.
  int64_t mem = allocatable ? r.allocatable_memory : r.capacity_memory;
  put(w, "memory", std::to_string(mem / 1024) + "Ki");
  int64_t eph = allocatable ? f.ephemeral_allocatable : f.ephemeral_capacity;
  put(w, "ephemeral-storage",
      allocatable ? q(eph, F::kDecimalSI) : std::to_string(eph / 1024) + "Ki");
  for (const auto& [name, bytes] : f.hugepages) {
    put(w, name.c_str(), q(bytes, F::kBinarySI));
  }
  put(w, "pods", std::to_string(f.max_pods));
  w.EndObject();
}

struct Condition {
  const char* type;
  bool status;  // "True"?
  const char* reason;
  const char* message;
};

std::vector<Condition> conditions(const NodeSignals& s) {
  return {
      {"MemoryPressure", s.memory_pressure,
       s.memory_pressure ? "KubeletHasInsufficientMemory" : "KubeletHasSufficientMemory",
       s.memory_pressure ? "kubelet has insufficient memory available"
                         : "kubelet has sufficient memory available"},
      {"DiskPressure", s.disk_pressure,
       s.disk_pressure ? "KubeletHasDiskPressure" : "KubeletHasNoDiskPressure",
       s.disk_pressure ? "kubelet has disk pressure" : "kubelet has no disk pressure"},
      {"PIDPressure", s.pid_pressure,
       s.pid_pressure ? "KubeletHasInsufficientPID" : "KubeletHasSufficientPID",
       s.pid_pressure ? "kubelet has insufficient PID available"
                      : "kubelet has sufficient PID available"},
      {"Ready", s.ready, s.ready ? "KubeletReady" : "KubeletNotReady",
       s.ready ? "kubelet is posting ready status" : "kubelet is not ready"},
  };
}

void status(Writer& w, const NodeFacts& f, const NodeSignals& s, const std::string& now,
            const std::map<std::string, std::string>& transitions) {
  w.StartObject();
  resources(w, "capacity", f, false);
  resources(w, "allocatable", f, true);
  w.Key("conditions");
  w.StartArray();
  for (const auto& c : conditions(s)) {
    w.StartObject();
    put(w, "type", c.type);
    put(w, "status", c.status ? "True" : "False");
    put(w, "lastHeartbeatTime", now);
    auto it = transitions.find(std::string(c.type) + "=" + (c.status ? "True" : "False"));
    put(w, "lastTransitionTime", it != transitions.end() ? it->second : now);
    put(w, "reason", c.reason);
    put(w, "message", c.message);
    w.EndObject();
  }
  w.EndArray();
  w.Key("addresses");
  w.StartArray();
  w.StartObject();
  put(w, "type", "InternalIP");
  put(w, "address", f.ip);
  w.EndObject();
  w.StartObject();
  put(w, "type", "Hostname");
  put(w, "address", f.hostname);
  w.EndObject();
  w.EndArray();
  w.Key("daemonEndpoints");
  w.StartObject();
  w.Key("kubeletEndpoint");
  w.StartObject();
  w.Key("Port");
  w.Int(f.kubelet_port);
  w.EndObject();
  w.EndObject();
  w.Key("nodeInfo");
  w.StartObject();
  put(w, "machineID", f.machine_id);
  put(w, "systemUUID", f.system_uuid);
  put(w, "bootID", f.boot_id);
  put(w, "kernelVersion", f.kernel_version);
  put(w, "osImage", f.os_image);
  put(w, "containerRuntimeVersion", std::string("kernelet://") + KERNELET_VERSION);
  put(w, "kubeletVersion", std::string("v1.35.0-kernelet.") + KERNELET_VERSION);
  put(w, "kubeProxyVersion", "");
  put(w, "operatingSystem", "linux");
  put(w, "architecture", f.architecture);
  w.EndObject();
  w.EndObject();
}

}  // namespace

NodeFacts readNodeFacts(const AgentConfig& config, const NodeResources& resources,
                        const std::string& node_ip) {
  NodeFacts f;
  f.name = config.node_name;
  f.hostname = config.node_name;
  f.ip = node_ip;
  f.machine_id = firstLine("/etc/machine-id");
  f.boot_id = firstLine("/proc/sys/kernel/random/boot_id");
  f.system_uuid = firstLine("/sys/class/dmi/id/product_uuid");
  if (f.system_uuid.empty()) {
    f.system_uuid = f.machine_id;
  }
  utsname u{};
  ::uname(&u);
  f.kernel_version = u.release;
  f.architecture = std::string(u.machine) == "x86_64" ? "amd64" : u.machine;
  f.os_image = osImage();
  f.resources = resources;
  f.max_pods = config.max_pods;
  struct statvfs st {};
  if (::statvfs(config.root_dir.c_str(), &st) == 0) {
    f.ephemeral_capacity = static_cast<int64_t>(st.f_blocks) * static_cast<int64_t>(st.f_frsize);
    // Less the reservations and the nodefs.available hard eviction threshold.
    auto threshold = config.eviction_hard.find("nodefs.available");
    int64_t evict =
        threshold == config.eviction_hard.end() ? 0 : threshold->second.of(f.ephemeral_capacity);
    f.ephemeral_allocatable =
        std::max<int64_t>(f.ephemeral_capacity - config.kube_reserved.ephemeral_storage -
                              config.system_reserved.ephemeral_storage - evict,
                          0);
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/kernel/mm/hugepages", ec)) {
    // hugepages-2048kB -> hugepages-2Mi, its pool's size in bytes.
    std::string dir = e.path().filename().string();
    int64_t kb = std::atoll(dir.substr(10).c_str());
    int64_t pages = std::atoll(firstLine(e.path().string() + "/nr_hugepages").c_str());
    std::string name = kb >= (1 << 20)   ? std::to_string(kb >> 20) + "Gi"
                       : kb >= (1 << 10) ? std::to_string(kb >> 10) + "Mi"
                                         : std::to_string(kb) + "Ki";
    f.hugepages["hugepages-" + name] = pages * kb * 1024;
  }
  return f;
}

NodeUsage readNodeUsage(const std::string& root_dir) {
  NodeUsage u;
  std::tie(u.memory_total, u.memory_available) = memTotalAndAvailable();
  struct statvfs st {};
  if (::statvfs(root_dir.c_str(), &st) == 0) {
    auto frsize = static_cast<int64_t>(st.f_frsize);
    u.fs_total = static_cast<int64_t>(st.f_blocks) * frsize;
    u.fs_available = static_cast<int64_t>(st.f_bavail) * frsize;
    u.inodes_total = static_cast<int64_t>(st.f_files);
    u.inodes_free = static_cast<int64_t>(st.f_ffree);
  }
  u.pid_max = std::atoll(firstLine("/proc/sys/kernel/pid_max").c_str());
  std::istringstream loadavg(firstLine("/proc/loadavg"));
  std::string a, b, c, running;
  loadavg >> a >> b >> c >> running;  // "1/234": runnable/total tasks
  u.pids = std::atoll(running.substr(running.find('/') + 1).c_str());
  return u;
}

NodeSignals nodeSignals(const NodeUsage& u, const std::map<std::string, Threshold>& hard) {
  // True when the signal's available amount is under its threshold.
  auto under = [&](const char* signal, int64_t available, int64_t capacity) {
    auto it = hard.find(signal);
    return it != hard.end() && capacity > 0 && available < it->second.of(capacity);
  };
  NodeSignals s;
  s.memory_pressure = under("memory.available", u.memory_available, u.memory_total);
  s.disk_pressure = under("nodefs.available", u.fs_available, u.fs_total) ||
                    under("nodefs.inodesFree", u.inodes_free, u.inodes_total) ||
                    under("imagefs.available", u.fs_available, u.fs_total) ||
                    under("imagefs.inodesFree", u.inodes_free, u.inodes_total);
  s.pid_pressure = under("pid.available", u.pid_max - u.pids, u.pid_max);
  return s;
}

NodeSignals readNodeSignals(const AgentConfig& config) {
  if (int p = published_pressure.load(); p >= 0) {
    NodeSignals s;
    s.memory_pressure = (p & 1) != 0;
    s.disk_pressure = (p & 2) != 0;
    s.pid_pressure = (p & 4) != 0;
    return s;
  }
  return nodeSignals(readNodeUsage(config.root_dir), config.eviction_hard);
}

void publishPressure(bool memory, bool disk, bool pid) {
  published_pressure.store((memory ? 1 : 0) | (disk ? 2 : 0) | (pid ? 4 : 0));
}

std::string nodeJson(const NodeFacts& f, const NodeSignals& s, const std::string& now) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  put(w, "apiVersion", "v1");
  put(w, "kind", "Node");
  w.Key("metadata");
  w.StartObject();
  put(w, "name", f.name);
  w.Key("labels");
  w.StartObject();
  put(w, "kubernetes.io/hostname", f.hostname);
  put(w, "kubernetes.io/os", "linux");
  put(w, "kubernetes.io/arch", f.architecture);
  put(w, "beta.kubernetes.io/os", "linux");
  put(w, "beta.kubernetes.io/arch", f.architecture);
  w.EndObject();
  w.Key("annotations");
  w.StartObject();
  put(w, "volumes.kubernetes.io/controller-managed-attach-detach", "true");
  w.EndObject();
  w.EndObject();
  w.Key("status");
  status(w, f, s, now, {});
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

std::string nodeStatusJson(const NodeFacts& f, const NodeSignals& s, const std::string& now,
                           const std::map<std::string, std::string>& transition_times) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("status");
  status(w, f, s, now, transition_times);
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

std::string nodeStatusFingerprint(const NodeFacts& f, const NodeSignals& s) {
  return nodeStatusJson(f, s, "",
                        {{"MemoryPressure=False", ""},
                         {"MemoryPressure=True", ""},
                         {"DiskPressure=False", ""},
                         {"DiskPressure=True", ""},
                         {"PIDPressure=False", ""},
                         {"PIDPressure=True", ""},
                         {"Ready=False", ""},
                         {"Ready=True", ""}});
}

}  // namespace kernelet::agent
