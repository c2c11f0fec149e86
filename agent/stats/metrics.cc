#include "agent/stats/metrics.h"

#include <algorithm>
#include <limits>

namespace kernelet::agent::stats {

Family::Family(std::string name, std::string help, MetricType type,
               std::vector<std::string> label_names, std::vector<double> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {
  // A family without labels has its one series from the start, as a plain
  // (not Vec) client_golang metric: it is exposed as 0 before anything counts.
  if (label_names_.empty()) {
    series_[{}].buckets.resize(buckets_.size());
  }
}

std::vector<std::string> Family::fit(const std::vector<std::string>& values) const {
  std::vector<std::string> out(values);
  out.resize(label_names_.size());
  return out;
}

void Family::add(const std::vector<std::string>& label_values, double v) {
  if (type_ == MetricType::kCounter && !(v >= 0)) {
    return;
  }
  std::lock_guard lock(mu_);
  series_[fit(label_values)].value += v;
}

void Family::set(const std::vector<std::string>& label_values, double v) {
  std::lock_guard lock(mu_);
  series_[fit(label_values)].value = v;
}

void Family::observe(const std::vector<std::string>& label_values, double v) {
  std::lock_guard lock(mu_);
  Series& s = series_[fit(label_values)];
  s.buckets.resize(buckets_.size());
  // The first bound >= v takes it ("le"); above every bound only +Inf counts it.
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), v);
  if (it != buckets_.end()) {
    ++s.buckets[it - buckets_.begin()];
  }
  ++s.count;
  s.sum += v;
}

void Family::clear() {
  std::lock_guard lock(mu_);
  series_.clear();
}

double Family::value(const std::vector<std::string>& label_values) const {
  std::lock_guard lock(mu_);
  auto it = series_.find(fit(label_values));
  return it == series_.end() ? 0 : it->second.value;
}

uint64_t Family::count(const std::vector<std::string>& label_values) const {
  std::lock_guard lock(mu_);
  auto it = series_.find(fit(label_values));
  return it == series_.end() ? 0 : it->second.count;
}

Labels Family::labelsFor(const std::vector<std::string>& values) const {
  Labels labels;
  for (size_t i = 0; i < label_names_.size(); ++i) {
    labels.emplace_back(label_names_[i], values[i]);
  }
  return labels;
}

void Family::write(TextWriter& w) const {
  std::lock_guard lock(mu_);
  // client_golang writes a family without series not at all, and neither do
  // we: a TYPE line without samples would only confuse a reader.
  if (series_.empty()) {
    return;
  }
  w.family(name_, help_, type_);
  for (const auto& [values, s] : series_) {
    Labels labels = labelsFor(values);
    if (type_ != MetricType::kHistogram) {
      w.sample(name_, labels, s.value);
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      cumulative += i < s.buckets.size() ? s.buckets[i] : 0;
      Labels with_le = labels;
      with_le.emplace_back("le", formatValue(buckets_[i]));
      w.sample(name_ + "_bucket", with_le, static_cast<double>(cumulative));
    }
    Labels inf = labels;
    inf.emplace_back("le", "+Inf");
    w.sample(name_ + "_bucket", inf, static_cast<double>(s.count));
    w.sample(name_ + "_sum", labels, s.sum);
    w.sample(name_ + "_count", labels, static_cast<double>(s.count));
  }
}

Family& Registry::add(const std::string& name, std::unique_ptr<Family> family) {
  std::lock_guard lock(mu_);
  for (const auto& f : families_) {
    if (f->name() == name) {
      return *f;
    }
  }
  families_.push_back(std::move(family));
  return *families_.back();
}

Family& Registry::counter(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names) {
  return add(name,
             std::make_unique<Family>(name, help, MetricType::kCounter, std::move(label_names)));
}

Family& Registry::gauge(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names) {
  return add(name,
             std::make_unique<Family>(name, help, MetricType::kGauge, std::move(label_names)));
}

Family& Registry::histogram(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names, std::vector<double> buckets) {
  std::sort(buckets.begin(), buckets.end());
  return add(name, std::make_unique<Family>(name, help, MetricType::kHistogram,
                                            std::move(label_names), std::move(buckets)));
}

void Registry::write(TextWriter& w) const {
  std::lock_guard lock(mu_);
  for (const auto& f : families_) {
    f->write(w);
  }
}

std::vector<double> podStartDurationBuckets() {
  return {0.5, 1,   2,   3,   4,   5,   6,   8,   10,   20,   30,   45,  60,
          120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600};
}

std::vector<double> defaultBuckets() { return {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}; }

KubeletMetrics::KubeletMetrics()
    : probe_total(probe_registry.counter(
          "prober_probe_total",
          "Cumulative number of a liveness, readiness or startup probe for a container by result.",
          {"probe_type", "result", "container", "pod", "namespace", "pod_uid"})),
      pod_start_duration(registry.histogram(
          "kubelet_pod_start_duration_seconds",
          "Duration in seconds from kubelet seeing a pod for the first time to the pod starting "
          "to run",
          {}, podStartDurationBuckets())),
      pod_worker_duration(
          registry.histogram("kubelet_pod_worker_duration_seconds",
                             "Duration in seconds to sync a single pod. Broken down by operation "
                             "type: create, update, or sync",
                             {"operation_type"}, defaultBuckets())),
      rest_client_requests(
          registry.counter("rest_client_requests_total",
                           "Number of HTTP requests, partitioned by status code, method, and host.",
                           {"code", "host", "method"})) {}

KubeletMetrics& kubeletMetrics() {
  static KubeletMetrics metrics;
  return metrics;
}

}  // namespace kernelet::agent::stats
