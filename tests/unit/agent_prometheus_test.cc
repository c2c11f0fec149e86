// agent/stats: Prometheus text exposition format 0.0.4, read back by a real
// parser (prometheus_client from Debian's python3-prometheus-client; a
// missing parser fails the test: scripts/install-deps installs it), and the
// pages of the node server built over a fake node.

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent/stats/instrumentation.h"
#include "agent/stats/metrics.h"
#include "agent/stats/metrics_text.h"
#include "agent/stats/prometheus.h"
#include "apiclient/request_observer.h"
#include "stats_fixture.h"
#include "support/temp_dir.h"

namespace kernelet::agent::stats {
namespace {

// The families the real parser read from `text`, as JSON (see data/prom_parse.py).
rapidjson::Document parseWithPrometheusClient(const std::string& text) {
  kernelet::testing::TempDir d;
  std::string in = d.write("metrics.txt", text);
  std::string out = d.path() + "/parsed.json";
  std::string cmd = "/usr/bin/python3 " KERNELET_TEST_DATA "/prom_parse.py " + in + " > " + out +
                    " 2> " + d.path() + "/err";
  int rc = std::system(cmd.c_str());
  std::ifstream err(d.path() + "/err");
  std::stringstream es;
  es << err.rdbuf();
  rapidjson::Document doc;
  EXPECT_EQ(rc, 0) << "prometheus_client could not parse:\n" << text << "\n" << es.str();
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  doc.Parse(ss.str().c_str());
  if (rc != 0 || doc.HasParseError() || !doc.IsArray()) {
    ADD_FAILURE() << "no parse result";
    doc.SetArray();
  }
  return doc;
}

const rapidjson::Value* family(const rapidjson::Document& doc, const std::string& name) {
  for (const auto& f : doc.GetArray()) {
    if (name == f["name"].GetString()) {
      return &f;
    }
  }
  return nullptr;
}

// The value of the sample `name` whose labels include every pair in `want`.
std::optional<double> sampleValue(const rapidjson::Document& doc, const std::string& name,
                                  const Labels& want = {}) {
  for (const auto& f : doc.GetArray()) {
    for (const auto& s : f["samples"].GetArray()) {
      if (name != s["name"].GetString()) {
        continue;
      }
      bool match = true;
      for (const auto& [k, v] : want) {
        match =
            match && s["labels"].HasMember(k.c_str()) && v == s["labels"][k.c_str()].GetString();
      }
      if (match && s["value"].IsNumber()) {
        return s["value"].GetDouble();
      }
    }
  }
  return std::nullopt;
}

TEST(Prometheus, TheRealParserReadsEscapesHistogramsAndTimestamps) {
  Registry r;
  auto& c = r.counter("test_requests_total", "Requests.\nSecond line with \\ backslash.",
                      {"path", "code"});
  c.add({"/a\"b\\c\nd", "200"}, 3);
  c.add({"/a\"b\\c\nd", "200"});
  c.add({"/x", "500"}, -5);  // a counter never goes down: ignored, series made
  auto& g = r.gauge("test_temperature", "Gauge.");
  g.set({}, -2.5);
  auto& h = r.histogram("test_duration_seconds", "Histogram.", {"op"}, {0.1, 1, 10});
  h.observe({"sync"}, 0.05);
  h.observe({"sync"}, 0.1);  // le is inclusive
  h.observe({"sync"}, 5);
  h.observe({"sync"}, 100);
  TextWriter w;
  r.write(w);
  w.family("test_ts", "With a timestamp.", MetricType::kGauge);
  w.sample("test_ts", {{"a", "b"}}, 1e21, 1700000000123);
  w.sample("test_ts", {{"a", "c"}}, std::numeric_limits<double>::infinity());
  std::string text = w.take();
  auto doc = parseWithPrometheusClient(text);

  auto* counter = family(doc, "test_requests");  // the parser strips _total
  ASSERT_NE(counter, nullptr) << text;
  EXPECT_STREQ((*counter)["type"].GetString(), "counter");
  EXPECT_STREQ((*counter)["help"].GetString(), "Requests.\nSecond line with \\ backslash.");
  EXPECT_EQ(sampleValue(doc, "test_requests_total", {{"path", "/a\"b\\c\nd"}, {"code", "200"}}), 4);
  EXPECT_EQ(sampleValue(doc, "test_requests_total", {{"path", "/x"}}), std::nullopt);
  EXPECT_EQ(sampleValue(doc, "test_temperature"), -2.5);
  EXPECT_EQ(sampleValue(doc, "test_duration_seconds_bucket", {{"op", "sync"}, {"le", "0.1"}}), 2);
  EXPECT_EQ(sampleValue(doc, "test_duration_seconds_bucket", {{"op", "sync"}, {"le", "1"}}), 2);
  EXPECT_EQ(sampleValue(doc, "test_duration_seconds_bucket", {{"op", "sync"}, {"le", "10"}}), 3);
  EXPECT_EQ(sampleValue(doc, "test_duration_seconds_bucket", {{"op", "sync"}, {"le", "+Inf"}}), 4);
  EXPECT_EQ(sampleValue(doc, "test_duration_seconds_count", {{"op", "sync"}}), 4);
  EXPECT_DOUBLE_EQ(*sampleValue(doc, "test_duration_seconds_sum", {{"op", "sync"}}), 105.15);
  auto* ts = family(doc, "test_ts");
  ASSERT_NE(ts, nullptr);
  EXPECT_DOUBLE_EQ((*ts)["samples"][0]["timestamp"].GetDouble(), 1700000000.123);
  EXPECT_EQ(sampleValue(doc, "test_ts", {{"a", "b"}}), 1e21);
  EXPECT_STREQ((*ts)["samples"][1]["value"].GetString(), "+Inf");
}

TEST(Prometheus, ValuesAreGoFloats) {
  EXPECT_EQ(formatValue(0), "0");
  // As Go's strconv.FormatFloat(v, 'g', -1, 64), which expfmt uses.
  EXPECT_EQ(formatValue(123456789), "1.23456789e+08");
  EXPECT_EQ(formatValue(26000000), "2.6e+07");
  EXPECT_EQ(formatValue(999999), "999999");
  EXPECT_EQ(formatValue(0.0001), "0.0001");
  EXPECT_EQ(formatValue(0.00001), "1e-05");
  EXPECT_EQ(formatValue(0.5), "0.5");
  EXPECT_EQ(formatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(formatValue(std::nan("")), "NaN");
  EXPECT_EQ(escapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

TEST(Prometheus, TheRegistryCountsFromManyThreads) {
  Registry r;
  auto& c = r.counter("test_total", "x", {"k"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        c.add({"v"});
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(c.value({"v"}), 4000);
  // Same name again: the same family.
  EXPECT_EQ(&r.counter("test_total", "other", {}), &c);
}

struct Pages {
  test::FakeNode n;
  NodeSnapshot snap;
  Summary summary;
  Pages() {
    std::string cg = "kubepods/besteffort/pod-u1";
    n.group(cg, 4000000, 9000, "anon 1000\ninactive_file 2000\n");
    n.group(cg + "/ctr1", 3000000, 8000, "anon 700\ninactive_file 1000\n");
    n.file("cgroup/" + cg + "/ctr1/cgroup.procs", "77\n");
    n.file("proc/77/net/dev", test::FakeNode::netDev(10, 0, 20, 0));
    PodSnapshot p = test::pod("u1", "db \"x\"", cg);  // a name that needs escaping
    p.status.container_statuses.push_back(test::running("main", "ctr1"));
    auto waiting = test::running("side", "");
    waiting.state.kind = ContainerState::Kind::kWaiting;
    waiting.container_id.clear();
    p.status.container_statuses.push_back(waiting);
    snap.pods["u1"] = std::make_shared<PodSnapshot>(p);
    CpuSampler sampler;
    summary = buildSummary(n.sources(), snap, sampler, nullptr, Clock::from_time_t(1800000000));
  }
};

TEST(PrometheusPages, ResourceMetricsAreWhatMetricsServerReads) {
  Pages p;
  std::string text = resourceMetricsText(p.summary, false);
  auto doc = parseWithPrometheusClient(text);
  Labels ctr{{"container", "main"}, {"pod", "db \"x\""}, {"namespace", "default"}};
  EXPECT_EQ(sampleValue(doc, "container_memory_working_set_bytes", ctr), 7000);
  EXPECT_EQ(sampleValue(doc, "container_cpu_usage_seconds_total", ctr), 3);
  EXPECT_EQ(sampleValue(doc, "pod_memory_working_set_bytes", {{"pod", "db \"x\""}}), 7000);
  EXPECT_EQ(sampleValue(doc, "pod_cpu_usage_seconds_total", {{"namespace", "default"}}), 4);
  EXPECT_EQ(sampleValue(doc, "node_cpu_usage_seconds_total"), 5);
  EXPECT_EQ(sampleValue(doc, "scrape_error"), 0);
  EXPECT_EQ(sampleValue(doc, "container_start_time_seconds", ctr),
            static_cast<double>(Clock::to_time_t(*parseRfc3339("2026-11-30T10:00:00Z"))));
  auto* f = family(doc, "container_memory_working_set_bytes");
  ASSERT_NE(f, nullptr);
  // The kubelet writes the sample's time in ms.
  EXPECT_DOUBLE_EQ((*f)["samples"][0]["timestamp"].GetDouble(), 1800000000.0);
  EXPECT_EQ(
      sampleValue(parseWithPrometheusClient(resourceMetricsText(p.summary, true)), "scrape_error"),
      1);
}

TEST(PrometheusPages, CadvisorHasContainerAndPodRowsWithItsLabels) {
  Pages p;
  auto doc = parseWithPrometheusClient(cadvisorMetricsText(p.summary, p.snap));
  Labels ctr{{"container", "main"},       {"id", "/kubepods/besteffort/pod-u1/ctr1"},
             {"image", "busybox:latest"}, {"name", "ctr1"},
             {"namespace", "default"},    {"pod", "db \"x\""}};
  EXPECT_EQ(sampleValue(doc, "container_memory_usage_bytes", ctr), 8000);
  EXPECT_EQ(sampleValue(doc, "container_memory_working_set_bytes", ctr), 7000);
  EXPECT_EQ(sampleValue(doc, "container_memory_rss", ctr), 700);
  Labels with_cpu = ctr;
  with_cpu.emplace_back("cpu", "total");
  EXPECT_EQ(sampleValue(doc, "container_cpu_usage_seconds_total", with_cpu), 3);
  Labels pod{{"container", ""}, {"id", "/kubepods/besteffort/pod-u1"}, {"interface", "eth0"}};
  EXPECT_EQ(sampleValue(doc, "container_network_receive_bytes_total", pod), 10);
  EXPECT_EQ(sampleValue(doc, "container_network_transmit_bytes_total", pod), 20);
  EXPECT_EQ(sampleValue(doc, "container_memory_working_set_bytes",
                        {{"container", ""}, {"id", "/kubepods/besteffort/pod-u1"}}),
            7000);
}

TEST(PrometheusPages, AgentMetricsCountPodsContainersAndTheProcess) {
  Pages p;
  Registry r;
  auto& start =
      r.histogram("kubelet_pod_start_duration_seconds", "x", {}, podStartDurationBuckets());
  start.observe({}, 1.5);
  auto doc = parseWithPrometheusClient(agentMetricsText(p.snap, r));
  EXPECT_EQ(sampleValue(doc, "kubelet_running_pods"), 1);
  EXPECT_EQ(sampleValue(doc, "kubelet_running_containers", {{"container_state", "running"}}), 1);
  EXPECT_EQ(sampleValue(doc, "kubelet_running_containers", {{"container_state", "exited"}}), 0);
  EXPECT_EQ(sampleValue(doc, "kubelet_pod_start_duration_seconds_bucket", {{"le", "2"}}), 1);
  EXPECT_EQ(sampleValue(doc, "kubelet_pod_start_duration_seconds_bucket", {{"le", "1"}}), 0);
  EXPECT_GT(*sampleValue(doc, "process_resident_memory_bytes"), 0);
  EXPECT_GT(*sampleValue(doc, "process_open_fds"), 2);
  EXPECT_GT(*sampleValue(doc, "process_max_fds"), 0);
  EXPECT_GT(*sampleValue(doc, "process_start_time_seconds"), 1.6e9);
  EXPECT_TRUE(sampleValue(doc, "process_cpu_seconds_total"));
  EXPECT_TRUE(sampleValue(doc, "process_virtual_memory_bytes"));
}

TEST(PrometheusPages, KubeletMetricsHaveTheKubeletsNames) {
  auto& m = kubeletMetrics();
  m.probe_total.add({"Readiness", "successful", "c", "p", "ns", "uid"});
  m.rest_client_requests.add({"200", "10.0.0.1:6443", "GET"});
  TextWriter probes;
  m.probe_registry.write(probes);
  auto pdoc = parseWithPrometheusClient(probes.take());
  EXPECT_GE(sampleValue(pdoc, "prober_probe_total",
                        {{"probe_type", "Readiness"}, {"result", "successful"}, {"pod_uid", "uid"}})
                .value_or(0),
            1);
  TextWriter own;
  m.registry.write(own);
  std::string text = own.take();
  EXPECT_EQ(text.find("prober_probe_total"), std::string::npos);  // only on /metrics/probes
  auto doc = parseWithPrometheusClient(text);
  EXPECT_GE(sampleValue(doc, "rest_client_requests_total", {{"method", "GET"}}).value_or(0), 1);
  EXPECT_TRUE(sampleValue(doc, "kubelet_pod_start_duration_seconds_count"));  // 0 before any
}

}  // namespace
}  // namespace kernelet::agent::stats

namespace kernelet::agent::stats {
namespace {

TEST(PrometheusPages, ApiRequestsAreCountedThroughTheApiClientsObserver) {
  KubeletMetrics m;
  installApiRequestMetrics(m);
  apiclient::observeRequest({.method = "PATCH", .host = "10.0.0.1:6443", .code = 200});
  apiclient::observeRequest({.method = "GET", .host = "10.0.0.1:6443", .code = 0});
  uninstallApiRequestMetrics();
  apiclient::observeRequest({.method = "PATCH", .host = "10.0.0.1:6443", .code = 200});
  EXPECT_EQ(m.rest_client_requests.value({"200", "10.0.0.1:6443", "PATCH"}), 1);
  EXPECT_EQ(m.rest_client_requests.value({"<error>", "10.0.0.1:6443", "GET"}), 1);
}

}  // namespace
}  // namespace kernelet::agent::stats
