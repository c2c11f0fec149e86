#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/config/config.h"
#include "agent/lifecycle/admission.h"
#include "agent/model/field_refs.h"
#include "agent/node/node_allocatable.h"
#include "agent/node/node_status.h"
#include "agent/runtime/volumes.h"
#include "agent/sources/manifest_source.h"
#include "support/temp_dir.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

TEST(KubeletConfiguration, ReadsTheFieldsThatApply) {
  TempDir d;
  std::string f = d.write("config.yaml", R"(apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/kubernetes/manifests
maxPods: 42
cgroupRoot: /custom
containerLogMaxSize: 5Mi
containerLogMaxFiles: 3
clusterDNS: [10.96.0.10]
clusterDomain: example.local
systemReserved: {cpu: 500m, memory: 1Gi}
authentication: {anonymous: {enabled: false}}
seccompDefault: true
)");
  AgentConfig c;
  auto r = loadKubeletConfiguration(f, c);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(c.pod_manifest_path, "/etc/kubernetes/manifests");
  EXPECT_EQ(c.max_pods, 42);
  EXPECT_EQ(c.cgroup_root, "/custom");
  EXPECT_EQ(c.container_log_max_size, 5 << 20);
  EXPECT_EQ(c.container_log_max_files, 3);
  EXPECT_EQ(c.cluster_dns, std::vector<std::string>{"10.96.0.10"});
  EXPECT_EQ(c.cluster_domain, "example.local");
  EXPECT_EQ(c.system_reserved.milli_cpu, 500);
  EXPECT_EQ(c.system_reserved.memory, 1LL << 30);
  EXPECT_TRUE(c.seccomp_default);
  EXPECT_EQ(c.root_dir, "/var/lib/kernelet");  // untouched defaults stay
}

TEST(KubeletConfiguration, ErrorsNameFileLineAndField) {
  TempDir d;
  AgentConfig c;
  auto kind = loadKubeletConfiguration(d.write("a.yaml", "apiVersion: v1\nkind: Pod\n"), c);
  ASSERT_FALSE(kind);
  EXPECT_NE(kind.error().message().find("a.yaml"), std::string::npos);
  EXPECT_NE(kind.error().message().find("kind: must be KubeletConfiguration"), std::string::npos);
  auto type = loadKubeletConfiguration(
      d.write("b.yaml",
              "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: "
              "many\n"),
      c);
  ASSERT_FALSE(type);
  EXPECT_NE(type.error().message().find("line 3: maxPods: wrong type"), std::string::npos)
      << type.error().message();
  auto size = loadKubeletConfiguration(
      d.write("c.yaml",
              "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
              "containerLogMaxSize: huge\n"),
      c);
  ASSERT_FALSE(size);
  EXPECT_NE(size.error().message().find("containerLogMaxSize"), std::string::npos);
  auto missing = loadKubeletConfiguration(d.path() + "/nope.yaml", c);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("nope.yaml"), std::string::npos);
}

Pod withRequests(const std::string& cpu, const std::string& memory) {
  Pod p{.name = "p", .uid = "6f1c1bd1-5a43-4a43-9a55-0d8f2f6f0b7e"};
  Container c{.name = "c"};
  c.resources.requests.insert_or_assign("cpu", *apiclient::Quantity::parse(cpu));
  c.resources.requests.insert_or_assign("memory", *apiclient::Quantity::parse(memory));
  p.containers.push_back(c);
  return p;
}

// A Quantity clamps 8Ei (2^63) to INT64_MAX: two such requests summed as
// plain int64 wrap negative and would fit any node.
TEST(Admission, RequestsThatOverflowWhenSummedAreRefusedNotWrapped) {
  NodeResources node{.allocatable_milli_cpu = 2000, .allocatable_memory = 1 << 30, .max_pods = 3};
  Pod memory = withRequests("1m", "8Ei");
  memory.containers.push_back(memory.containers[0]);
  memory.containers[1].name = "d";
  Admission a = admit(memory, {}, node);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.reason, "OutOfmemory");
  EXPECT_EQ(a.message,
            "Node didn't have enough resource: memory, requested: 9223372036854775807, "
            "used: 0, capacity: 1073741824");
  Pod cpu = withRequests("8Ei", "1Mi");
  cpu.init_containers.push_back(cpu.containers[0]);
  cpu.init_containers[0].name = "side";
  cpu.init_containers[0].restart_policy = "Always";
  a = admit(cpu, {}, node);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.reason, "OutOfcpu");
  // Beside a running pod that asks for that much, a small pod does not fit either.
  Pod small = withRequests("1m", "1Mi");
  Pod huge = withRequests("8Ei", "8Ei");
  EXPECT_EQ(admit(small, {&huge, &huge}, node).reason, "OutOfcpu");
}

TEST(Admission, RejectsWithTheKubeletsReasons) {
  NodeResources node{.allocatable_milli_cpu = 2000, .allocatable_memory = 1 << 30, .max_pods = 3};
  Pod a = withRequests("1500m", "100Mi");
  Pod b = withRequests("600m", "100Mi");
  EXPECT_TRUE(admit(a, {}, node).admitted);
  Admission cpu = admit(b, {&a}, node);
  EXPECT_FALSE(cpu.admitted);
  EXPECT_EQ(cpu.reason, "OutOfcpu");
  EXPECT_EQ(cpu.message,
            "Node didn't have enough resource: cpu, requested: 600, used: 1500, capacity: 2000");
  Pod big = withRequests("1m", "2Gi");
  EXPECT_EQ(admit(big, {}, node).reason, "OutOfmemory");
  Pod none{.name = "none", .uid = "u-none"};
  none.containers.push_back({.name = "c"});
  EXPECT_EQ(admit(none, {&none, &none, &none}, node).reason, "OutOfpods");
  // Init containers count by the larger of their peak and the app's sum.
  Pod init = withRequests("100m", "1Mi");
  Container i{.name = "i"};
  i.resources.requests.insert_or_assign("cpu", *apiclient::Quantity::parse("1"));
  init.init_containers.push_back(i);
  EXPECT_EQ(podRequestMilliCpu(init), 1000);
  NodeResources real = readNodeResources(AgentConfig{});
  EXPECT_GT(real.capacity_milli_cpu, 0);
  EXPECT_EQ(real.capacity_memory - real.allocatable_memory, 100 << 20);  // memory.available<100Mi
}

// allocatable = capacity - kubeReserved - systemReserved - evictionHard, as
// `kubectl describe node` shows it for the kubelet.
TEST(KubeletConfiguration, ReservationsAndEvictionThresholdsMakeAllocatable) {
  TempDir d;
  AgentConfig c;
  auto r =
      loadKubeletConfiguration(d.write("config.yaml", R"(apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
kubeReserved: {cpu: 100m, memory: 256Mi, ephemeral-storage: 1Gi}
systemReserved: {cpu: 200m, memory: 512Mi}
evictionHard: {memory.available: 5%, nodefs.available: 2Gi}
)"),
                               c);
  ASSERT_TRUE(r) << r.error().message();
  NodeResources n = nodeResources(4000, 8LL << 30, c);
  EXPECT_EQ(n.allocatable_milli_cpu, 3700);
  EXPECT_EQ(n.allocatable_memory, (8LL << 30) - (256 << 20) - (512 << 20) - (8LL << 30) / 20);
  EXPECT_EQ(c.kube_reserved.ephemeral_storage, 1LL << 30);
  // The signals evictionHard leaves out have no threshold (the kubelet's rule
  // without mergeDefaultEvictionSettings).
  EXPECT_EQ(c.eviction_hard.size(), 2u);
  EXPECT_FALSE(c.eviction_hard.contains("imagefs.available"));
  EXPECT_EQ(c.eviction_hard["nodefs.available"].of(100LL << 30), 2LL << 30);

  AgentConfig merged;
  ASSERT_TRUE(
      loadKubeletConfiguration(d.write("merge.yaml",
                                       "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: "
                                       "KubeletConfiguration\nmergeDefaultEvictionSettings: true\n"
                                       "evictionHard: {memory.available: 1Gi}\n"),
                               merged));
  EXPECT_EQ(merged.eviction_hard["memory.available"].of(8LL << 30), 1LL << 30);
  EXPECT_EQ(merged.eviction_hard["imagefs.available"].of(1000), 150);  // the default 15%

  // The flags' forms.
  auto reserved =
      parseReserved("cpu=1,memory=1Gi,ephemeral-storage=10G,pid=1000", "--kube-reserved");
  ASSERT_TRUE(reserved) << reserved.error().message();
  EXPECT_EQ(reserved->milli_cpu, 1000);
  EXPECT_EQ(reserved->ephemeral_storage, 10'000'000'000);
  EXPECT_EQ(reserved->pids, 1000);

  // Pods together get what the reservations leave (not less the eviction threshold).
  AgentConfig enforce;
  enforce.kube_reserved = *reserved;
  enforce.system_reserved.memory = 1LL << 30;
  cgroups::Limits kubepods =
      kubepodsLimits(nodeResources(4000, 8LL << 30, enforce), enforce, 32768);
  EXPECT_EQ(kubepods.cpu_weight, cgroups::sharesToWeight(cgroups::milliCpuToShares(3000)));
  EXPECT_EQ(kubepods.memory_max, 6LL << 30);
  EXPECT_EQ(kubepods.pids_max, 31768);
  EXPECT_FALSE(kubepods.cpu_max);  // cpu is shared by weight, never capped
  auto hard = parseEvictionHard("memory.available<300Mi,nodefs.inodesFree<7%", "--eviction-hard");
  ASSERT_TRUE(hard) << hard.error().message();
  EXPECT_EQ((*hard)["memory.available"].of(0), 300 << 20);
  EXPECT_EQ((*hard)["nodefs.inodesFree"].of(1000), 70);
}

TEST(KubeletConfiguration, BadReservationsAndThresholdsNameTheFieldOrFlag) {
  TempDir d;
  AgentConfig c;
  auto load = [&](const std::string& body) {
    auto r = loadKubeletConfiguration(
        d.write("c.yaml",
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n" + body),
        c);
    return r ? std::string("loaded") : r.error().message();
  };
  EXPECT_NE(load("kubeReserved: {gpu: 1}\n").find("line 3: kubeReserved.gpu: unknown resource"),
            std::string::npos)
      << load("kubeReserved: {gpu: 1}\n");
  EXPECT_NE(load("evictionHard: {memory.free: 1Gi}\n")
                .find("line 3: evictionHard.memory.free: unknown signal"),
            std::string::npos);
  EXPECT_NE(load("evictionHard: {nodefs.available: 120%}\n")
                .find("evictionHard.nodefs.available: not a percentage between 0% and 100%"),
            std::string::npos);
  EXPECT_NE(load("systemReserved: {memory: lots}\n").find("systemReserved.memory: not a quantity"),
            std::string::npos);
  auto flag = parseReserved("cpu=1,memory", "--system-reserved");
  ASSERT_FALSE(flag);
  EXPECT_EQ(flag.error().message(), "parse --system-reserved `memory`: expected NAME=VALUE");
  auto op = parseEvictionHard("memory.available>1Gi", "--eviction-hard");
  ASSERT_FALSE(op);
  EXPECT_EQ(op.error().message(),
            "parse --eviction-hard `memory.available>1Gi`: expected NAME<VALUE");
}

// The conditions follow evictionHard: the kubelet's defaults, then none.
TEST(NodeConditions, PressureIsTheThresholdsCrossed) {
  NodeUsage u{.memory_total = 8LL << 30,
              .memory_available = 50 << 20,
              .fs_total = 100LL << 30,
              .fs_available = 12LL << 30,
              .inodes_total = 1000,
              .inodes_free = 500,
              .pid_max = 1000,
              .pids = 990};
  NodeSignals s = nodeSignals(u, defaultEvictionHard());
  EXPECT_TRUE(s.memory_pressure);  // 50Mi < 100Mi
  EXPECT_TRUE(s.disk_pressure);    // 12% free < imagefs.available 15% (images share the fs)
  EXPECT_FALSE(s.pid_pressure);    // no pid.available threshold by default
  u.memory_available = 1LL << 30;
  u.fs_available = 20LL << 30;
  s = nodeSignals(u, defaultEvictionHard());
  EXPECT_FALSE(s.memory_pressure);
  EXPECT_FALSE(s.disk_pressure);
  u.inodes_free = 10;  // 1% < nodefs.inodesFree 5%
  EXPECT_TRUE(nodeSignals(u, defaultEvictionHard()).disk_pressure);
  auto pid = *parseEvictionHard("pid.available<5%", "--eviction-hard");
  EXPECT_TRUE(nodeSignals(u, pid).pid_pressure);  // 10 left of 1000
  EXPECT_FALSE(nodeSignals(u, pid).disk_pressure);
}

TEST(FieldRefs, DownwardApiValues) {
  Pod p = withRequests("250m", "64Mi");
  p.name = "web";
  p.namespace_ = "prod";
  p.uid = "u-1";
  p.node_name = "node1";
  p.labels = {{"app", "web"}, {"tier", "front"}};
  PodRuntimeInfo info{"10.88.0.5", "192.168.1.2", 4000, 8LL << 30};
  EXPECT_EQ(*fieldRefValue(p, "metadata.name", info), "web");
  EXPECT_EQ(*fieldRefValue(p, "metadata.namespace", info), "prod");
  EXPECT_EQ(*fieldRefValue(p, "metadata.uid", info), "u-1");
  EXPECT_EQ(*fieldRefValue(p, "spec.nodeName", info), "node1");
  EXPECT_EQ(*fieldRefValue(p, "status.podIP", info), "10.88.0.5");
  EXPECT_EQ(*fieldRefValue(p, "status.hostIP", info), "192.168.1.2");
  EXPECT_EQ(*fieldRefValue(p, "metadata.labels['tier']", info), "front");
  EXPECT_EQ(*fieldRefValue(p, "metadata.labels", info, true), "app=\"web\"\ntier=\"front\"\n");
  EXPECT_FALSE(fieldRefValue(p, "metadata.labels", info));  // whole maps only in volumes
  EXPECT_FALSE(fieldRefValue(p, "spec.bogus", info));
  EXPECT_EQ(*resourceFieldValue(p, "c", "requests.cpu", info), "1");  // 250m rounds up
  EXPECT_EQ(*resourceFieldValue(p, "c", "requests.memory", info), std::to_string(64 << 20));
  EXPECT_EQ(*resourceFieldValue(p, "c", "limits.cpu", info), "4");  // unset: the node's
  EXPECT_FALSE(resourceFieldValue(p, "other", "limits.cpu", info));
}

TEST(ExpandVars, KubernetesDollarParenRules) {
  std::map<std::string, std::string> vars = {{"A", "1"}, {"B", "two"}};
  EXPECT_EQ(expandVars("$(A)-$(B)", vars), "1-two");
  EXPECT_EQ(expandVars("$(MISSING) stays", vars), "$(MISSING) stays");
  EXPECT_EQ(expandVars("$$(A) is escaped", vars), "$(A) is escaped");
  EXPECT_EQ(expandVars("plain $A and $", vars), "plain $A and $");
}

TEST(ManifestSource, StaticPodsGetTheNodeSuffixAndAStableUid) {
  auto parsed = parseManifests(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: a, image: "
      "x}]\n",
      "/m/web.yaml");
  ASSERT_TRUE(parsed);
  StaticPod a = staticPod((*parsed)[0], "/m/web.yaml", "node1");
  StaticPod b = staticPod((*parsed)[0], "/m/web.yaml", "node1");
  StaticPod other = staticPod((*parsed)[0], "/m/web.yaml", "node2");
  EXPECT_EQ(a.pod.name, "web-node1");
  EXPECT_EQ(a.pod.node_name, "node1");
  EXPECT_EQ(a.pod.uid, b.pod.uid);
  EXPECT_NE(a.pod.uid, other.pod.uid);
  EXPECT_EQ(a.pod.uid.size(), 32u);
  EXPECT_EQ(a.pod.annotations["kubernetes.io/config.source"], "file");
}

// Runs the loop until `done` or 5 s.
void runUntil(EventLoop& loop, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(loop.runOnce(std::chrono::milliseconds(50)));
  }
}

const char* kPod =
    "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  containers: [{name: a, image: "
    "%s}]\n";

std::string podYaml(const std::string& name, const std::string& image) {
  char buf[512];
  std::snprintf(buf, sizeof buf, kPod, name.c_str(), image.c_str());
  return buf;
}

TEST(ManifestSource, WatchesFilesComingChangingAndGoing) {
  TempDir d;
  d.write("a.yaml", podYaml("a", "busybox"));
  d.write(".hidden.yaml", podYaml("hidden", "busybox"));
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  int changes = 0;
  std::vector<std::string> errors;
  auto src = ManifestSource::open(
      *loop, d.path(), "n", [&] { changes++; },
      [&](const Error& e) { errors.push_back(e.message()); });
  ASSERT_TRUE(src) << src.error().message();
  auto names = [&] {
    std::set<std::string> out;
    for (const auto& [uid, p] : (*src)->pods()) {
      out.insert(p.pod.name);
    }
    return out;
  };
  EXPECT_EQ(names(), (std::set<std::string>{"a-n"}));

  d.write("b.yaml", podYaml("b", "busybox"));
  runUntil(*loop, [&] { return names().size() == 2; });
  EXPECT_EQ(names(), (std::set<std::string>{"a-n", "b-n"}));

  auto hashOf = [&](const std::string& name) {
    for (const auto& [uid, p] : (*src)->pods()) {
      if (p.pod.name == name) {
        return p.hash;
      }
    }
    return std::string();
  };
  std::string old_hash = hashOf("a-n");
  d.write("a.yaml", podYaml("a", "busybox:2"));
  runUntil(*loop, [&] { return hashOf("a-n") != old_hash; });
  EXPECT_NE(hashOf("a-n"), old_hash);
  EXPECT_EQ(names(), (std::set<std::string>{"a-n", "b-n"}));

  // A broken file is reported with its name and line; its pods stay as they were.
  int before = changes;
  d.write("b.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: []}\n");
  runUntil(*loop, [&] { return !errors.empty(); });
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("b.yaml"), std::string::npos);
  EXPECT_NE(errors[0].find("line 4"), std::string::npos) << errors[0];
  EXPECT_EQ(names(), (std::set<std::string>{"a-n", "b-n"}));
  EXPECT_EQ(changes, before);

  fs::remove(d.path() + "/a.yaml");
  runUntil(*loop, [&] { return names().size() == 1; });
  EXPECT_EQ(names(), (std::set<std::string>{"b-n"}));

  // Written elsewhere and renamed in, as editors and config tools do.
  std::string tmp = d.write(".c.tmp", podYaml("c", "busybox"));
  fs::rename(tmp, d.path() + "/c.yaml");
  runUntil(*loop, [&] { return names().size() == 2; });
  EXPECT_EQ(names(), (std::set<std::string>{"b-n", "c-n"}));
}

TEST(ManifestSource, AMissingDirIsAnErrorNamingIt) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  auto src = ManifestSource::open(
      *loop, "/nonexistent/manifests", "n", [] {}, [](const Error&) {});
  ASSERT_FALSE(src);
  EXPECT_NE(src.error().message().find("/nonexistent/manifests"), std::string::npos);
}

TEST(PodVolumes, HostPathTypesAndEmptyDirLayout) {
  TempDir d;
  fs::create_directories(d.path() + "/exists");
  d.write("file", "x");
  Pod p;
  p.uid = "u";
  auto host = [&](const std::string& name, const std::string& path, const std::string& type) {
    p.volumes.push_back(
        {.name = name, .kind = Volume::Kind::kHostPath, .path = path, .host_path_type = type});
  };
  host("dir", d.path() + "/exists", "Directory");
  host("create", d.path() + "/made/here", "DirectoryOrCreate");
  host("file", d.path() + "/file", "File");
  host("newfile", d.path() + "/newfile", "FileOrCreate");
  p.volumes.push_back({.name = "scratch", .kind = Volume::Kind::kEmptyDir});
  Volume down{.name = "info", .kind = Volume::Kind::kDownwardApi};
  down.sources.push_back({.kind = Projection::Kind::kDownwardApi,
                          .fields = {{.path = "name", .field_path = "metadata.name"}}});
  p.name = "web";
  p.volumes.push_back(down);
  auto v = PodVolumes::setUp(p, d.path() + "/pod", {}, nullptr);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_TRUE(fs::is_directory(d.path() + "/made/here"));
  EXPECT_TRUE(fs::is_regular_file(d.path() + "/newfile"));
  EXPECT_EQ(*v->hostPath("scratch"), d.path() + "/pod/volumes/kubernetes.io~empty-dir/scratch");
  struct stat st {};
  ASSERT_EQ(::stat(v->hostPath("scratch")->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0777u);
  std::ifstream name(*v->hostPath("info") + "/name");
  std::string text;
  std::getline(name, text);
  EXPECT_EQ(text, "web");
  EXPECT_TRUE(fs::is_symlink(*v->hostPath("info") + "/..data"));
  ASSERT_TRUE(v->tearDown());
  EXPECT_FALSE(fs::exists(d.path() + "/pod/volumes"));
  EXPECT_TRUE(fs::exists(d.path() + "/exists"));  // hostPath is never removed

  Pod bad;
  bad.uid = "u";
  bad.volumes.push_back({.name = "ok", .kind = Volume::Kind::kEmptyDir});
  bad.volumes.push_back({.name = "data",
                         .kind = Volume::Kind::kHostPath,
                         .path = d.path() + "/file",
                         .host_path_type = "Directory"});
  auto e = PodVolumes::setUp(bad, d.path() + "/pod2", {}, nullptr);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("volume \"data\""), std::string::npos) << e.error().message();
  EXPECT_NE(e.error().message().find("type Directory"), std::string::npos);
  EXPECT_FALSE(fs::exists(d.path() + "/pod2/volumes"));  // nothing half made is left

  Pod cm;
  cm.volumes.push_back({.name = "cfg",
                        .kind = Volume::Kind::kConfigMap,
                        .sources = {{.kind = Projection::Kind::kConfigMap, .name = "settings"}}});
  auto c = PodVolumes::setUp(cm, d.path() + "/pod3", {}, nullptr);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("come from an API server: run with --kubeconfig"),
            std::string::npos)
      << c.error().message();
  EXPECT_FALSE(fs::exists(d.path() + "/pod3/volumes"));
}

}  // namespace
}  // namespace kernelet::agent
