#pragma once
// A small thread-safe metrics registry for the agent's own metrics (/metrics
// and /metrics/probes): counter, gauge and histogram families, each with
// fixed label names and one series per label-value tuple. Any thread may
// count; a scrape writes every family in the order they were registered.
// Families are created once (at start-up or on first use) and live as long
// as the registry: the references handed out stay valid.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/stats/prometheus.h"

namespace kernelet::agent::stats {

class Family {
 public:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::vector<double> buckets = {});
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  const std::string& name() const { return name_; }
  // Counters: adds `v` (>= 0; a negative amount is ignored, as a counter only
  // goes up). Gauges: adds `v`, may be negative.
  void add(const std::vector<std::string>& label_values, double v = 1);
  // Gauges: sets the value.
  void set(const std::vector<std::string>& label_values, double v);
  // Histograms: one observation.
  void observe(const std::vector<std::string>& label_values, double v);
  // Gauges: drops every series (before setting the current ones anew).
  void clear();
  // The value of a counter or gauge series, 0 if absent (tests, and /metrics).
  double value(const std::vector<std::string>& label_values) const;
  // A histogram series' count of observations.
  uint64_t count(const std::vector<std::string>& label_values) const;

  void write(TextWriter& w) const;

 private:
  struct Series {
    double value = 0;
    std::vector<uint64_t> buckets;  // per upper bound, not cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  Labels labelsFor(const std::vector<std::string>& values) const;
  // A tuple of the wrong size is a programming error: padded or cut to fit.
  std::vector<std::string> fit(const std::vector<std::string>& values) const;

  const std::string name_, help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
  const std::vector<double> buckets_;  // ascending upper bounds, +Inf implied
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, Series> series_;  // guarded by mu_
};

class Registry {
 public:
  // The family of that name, registered on the first call; later calls
  // return the same family (their other arguments are not looked at).
  Family& counter(const std::string& name, const std::string& help,
                  std::vector<std::string> label_names = {});
  Family& gauge(const std::string& name, const std::string& help,
                std::vector<std::string> label_names = {});
  Family& histogram(const std::string& name, const std::string& help,
                    std::vector<std::string> label_names, std::vector<double> buckets);
  // Writes every family.
  void write(TextWriter& w) const;

 private:
  Family& add(const std::string& name, std::unique_ptr<Family> family);
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;  // guarded by mu_
};

// The kubelet's own metrics, with its names, labels and buckets, registered
// in one process-wide registry (the kubelet's legacyregistry). The places
// that count (prober, pod worker, API client observer) use these.
struct KubeletMetrics {
  Registry registry;        // /metrics
  Registry probe_registry;  // /metrics/probes (the kubelet keeps them apart too)
  // prober_probe_total{probe_type,result,container,pod,namespace,pod_uid}
  Family& probe_total;
  // kubelet_pod_start_duration_seconds: pod creation seen -> running.
  Family& pod_start_duration;
  // kubelet_pod_worker_duration_seconds{operation_type}: create, update, sync.
  Family& pod_worker_duration;
  // rest_client_requests_total{code,host,method}
  Family& rest_client_requests;

  KubeletMetrics();
};
KubeletMetrics& kubeletMetrics();

// The kubelet's bucket sets.
std::vector<double> podStartDurationBuckets();
std::vector<double> defaultBuckets();  // Prometheus' DefBuckets

}  // namespace kernelet::agent::stats
