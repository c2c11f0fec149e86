// What a hostile pod cannot do to the agent: names that become paths, too
// many containers, two static pods with one identity; and the seccomp default.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <functional>
#include <set>

#include "agent/app/cli.h"
#include "agent/config/config.h"
#include "agent/lifecycle/admission.h"
#include "agent/model/pod_names.h"
#include "agent/sources/manifest_source.h"
#include "support/temp_dir.h"

namespace kernelet::agent {
namespace {

using testing::TempDir;

Pod named(const std::string& ns, const std::string& name, const std::string& uid) {
  Pod p{.name = name, .namespace_ = ns, .uid = uid};
  p.containers.push_back({.name = "c"});
  return p;
}

NodeResources bigNode() {
  return {.allocatable_milli_cpu = 64000, .allocatable_memory = int64_t{64} << 30, .max_pods = 110};
}

// A pod from the API server with names it would refuse is rejected at
// admission (phase Failed, the kubelet's FailedValidation) with the field named,
// before its log directory <namespace>_<name>_<uid> is built.
TEST(PodNames, AdmissionRefusesNamesThatWouldBecomeBadPaths) {
  struct Case {
    Pod pod;
    std::string field;
  };
  Pod hostname = named("default", "web", "u1");
  hostname.hostname = "Not_A_Label";
  Pod subdomain = named("default", "web", "u1");
  subdomain.subdomain = "a.b";
  Pod container = named("default", "web", "u1");
  container.containers[0].name = "../c";
  Pod init = named("default", "web", "u1");
  init.init_containers.push_back({.name = std::string(64, 'a')});
  std::vector<Case> cases = {
      {named("../../../../etc/x", "web", "u1"),
       "metadata.namespace: Invalid value: \"../../../../etc/x\""},
      {named(std::string(64, 'a'), "web", "u1"), "metadata.namespace: Invalid value"},
      {named("default", "../web", "u1"), "metadata.name: Invalid value: \"../web\""},
      {named("default", std::string(254, 'a'), "u1"), "metadata.name: Invalid value"},
      {named("default", "web", "../../x"), "metadata.uid: Invalid value: \"../../x\""},
      {named("default", "web", ".."), "metadata.uid: Invalid value"},
      {named("default", "web", "a/b"), "metadata.uid: Invalid value"},
      {named("default", "web", ""), "metadata.uid: Invalid value"},
      {named("default", "web", std::string(129, 'a')), "metadata.uid: Invalid value"},
      {hostname, "spec.hostname: Invalid value: \"Not_A_Label\""},
      {subdomain, "spec.subdomain: Invalid value: \"a.b\""},
      {container, "spec.containers[0].name: Invalid value: \"../c\""},
      {init, "spec.initContainers[0].name: Invalid value"},
  };
  for (const Case& c : cases) {
    Admission a = admit(c.pod, {}, bigNode());
    EXPECT_FALSE(a.admitted) << c.field;
    EXPECT_EQ(a.reason, "FailedValidation") << c.field;
    EXPECT_EQ(a.message.rfind(c.field, 0), 0u) << a.message;
  }
  // What the API server generates and what static pods get passes.
  EXPECT_TRUE(admit(named("kube-system", "web.example-1", "6f1c1bd1-5a43-4a43-9a55-0d8f2f6f0b7e"),
                    {}, bigNode())
                  .admitted);
  EXPECT_TRUE(admit(named("a", "b", "0123456789abcdef0123456789abcdef"), {}, bigNode()).admitted);
  EXPECT_TRUE(admit(named("a", "b", "Mixed_Case.uid-1"), {}, bigNode()).admitted);
}

TEST(PodLimits, APodOverTheContainerCapIsRefusedByName) {
  Pod at_cap = named("default", "many", "u1");
  at_cap.containers.clear();
  for (size_t i = 0; i < kMaxContainersPerPod; i++) {
    at_cap.containers.push_back({.name = "c" + std::to_string(i)});
  }
  EXPECT_TRUE(admit(at_cap, {}, bigNode()).admitted);
  Pod over = at_cap;
  over.init_containers.push_back({.name = "init"});
  Admission a = admit(over, {}, bigNode());
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.reason, "FailedValidation");
  EXPECT_EQ(a.message,
            "spec.containers: Too many: 251 containers (init containers included): "
            "must have at most 250");
}

// The agent holds about six descriptors per container: a pod that would take
// it past its open-file limit is refused, not started into EMFILE errors.
TEST(PodLimits, PodsBeyondTheAgentsOpenFileLimitAreRefused) {
  NodeResources node = bigNode();
  node.max_containers = 300;
  Pod a = named("default", "a", "ua");
  a.containers.clear();
  for (int i = 0; i < 200; i++) {
    a.containers.push_back({.name = "c" + std::to_string(i)});
  }
  Pod b = a;
  b.name = "b";
  b.uid = "ub";
  EXPECT_TRUE(admit(a, {}, node).admitted);
  Admission full = admit(b, {&a}, node);
  EXPECT_FALSE(full.admitted);
  EXPECT_EQ(full.reason, "OutOfdescriptors");
  EXPECT_EQ(full.message,
            "Node didn't have enough resource: descriptors, requested: 1200, used: 1200, "
            "capacity: 1800");
  Pod small = named("default", "s", "us");
  EXPECT_TRUE(admit(small, {&a}, node).admitted);
  // Read from the agent's hard RLIMIT_NOFILE.
  rlimit files{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &files), 0);
  if (files.rlim_max != RLIM_INFINITY) {
    EXPECT_EQ(readNodeResources(AgentConfig{}).max_containers,
              std::max<int64_t>((static_cast<int64_t>(files.rlim_max) - 100) / 6, 1));
  }
}

// Runs the loop until `done` or 5 s.
void runUntil(EventLoop& loop, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(loop.runOnce(std::chrono::milliseconds(50)));
  }
}

std::string manifest(const std::string& meta, const std::string& spec = "") {
  return "apiVersion: v1\nkind: Pod\nmetadata: {" + meta +
         "}\nspec:\n  containers: [{name: a, image: busybox}]\n" + spec;
}

struct Watched {
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<ManifestSource> source;
  std::vector<std::string> errors;
  std::set<std::string> names() const {
    std::set<std::string> out;
    for (const auto& [uid, p] : source->pods()) {
      out.insert(p.pod.namespace_ + "/" + p.pod.name + " " + p.file.substr(p.file.rfind('/') + 1));
    }
    return out;
  }
};

std::unique_ptr<Watched> watch(const TempDir& d) {
  auto w = std::make_unique<Watched>();
  auto loop = EventLoop::create();
  EXPECT_TRUE(loop);
  w->loop = std::make_unique<EventLoop>(std::move(*loop));
  auto src = ManifestSource::open(
      *w->loop, d.path(), "node1", [] {},
      [raw = w.get()](const Error& e) { raw->errors.push_back(e.message()); });
  EXPECT_TRUE(src) << src.error().message();
  w->source = std::move(*src);
  return w;
}

// A static pod whose namespace was ../../../../etc/x had its logs written
// outside /var/log/pods: such a file is refused, naming file, line and field.
TEST(ManifestSource, StaticPodsWithNamesThatWouldBecomeBadPathsAreRefused) {
  TempDir d;
  d.write("ns.yaml", manifest("name: web, namespace: ../../../../etc/x"));
  d.write("uid.yaml", "# a comment first\n" + manifest("name: web2, uid: ../../../tmp/x"));
  d.write("host.yaml", manifest("name: web3", "  hostname: Bad_Host\n"));
  d.write("sub.yaml", manifest("name: web4", "  subdomain: x.y\n"));
  d.write("long.yaml", manifest("name: " + std::string(248, 'a')));  // too long with "-node1"
  d.write("ok.yaml", manifest("name: fine"));
  auto w = watch(d);
  EXPECT_EQ(w->names(), (std::set<std::string>{"default/fine-node1 ok.yaml"}));
  std::set<std::string> errors(w->errors.begin(), w->errors.end());
  std::string dir = d.path();
  EXPECT_TRUE(errors.contains("parse manifest `" + dir +
                              "/ns.yaml`: line 1: metadata.namespace: "
                              "Invalid value: \"../../../../etc/x\": must be a DNS label (at most "
                              "63 lowercase letters, digits and '-', starting and ending with a "
                              "letter or digit)"))
      << ::testing::PrintToString(w->errors);
  auto has = [&](const std::string& file, const std::string& what) {
    for (const auto& e : errors) {
      if (e.find("`" + dir + "/" + file + "`") != std::string::npos &&
          e.find(what) != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(has("uid.yaml", "line 2: metadata.uid: Invalid value: \"../../../tmp/x\""));
  EXPECT_TRUE(has("host.yaml", "spec.hostname: Invalid value: \"Bad_Host\""));
  EXPECT_TRUE(has("sub.yaml", "spec.subdomain: Invalid value: \"x.y\""));
  EXPECT_TRUE(has("long.yaml", "metadata.name: Invalid value"));
  EXPECT_EQ(w->errors.size(), 5u) << ::testing::PrintToString(w->errors);
}

// Two static pods with one uid (or one namespace/name): the kubelet reports
// the duplicate and keeps the first; one used to vanish without a word.
TEST(ManifestSource, DuplicateStaticPodsAreReportedNamingBothFilesAndTheFirstRuns) {
  TempDir d;
  d.write("a.yaml", manifest("name: web, uid: same-uid"));
  auto w = watch(d);
  EXPECT_EQ(w->names(), (std::set<std::string>{"default/web-node1 a.yaml"}));
  d.write("b.yaml", manifest("name: other, uid: same-uid"));
  runUntil(*w->loop, [&] { return !w->errors.empty(); });
  ASSERT_EQ(w->errors.size(), 1u);
  std::string dir = d.path();
  EXPECT_EQ(w->errors[0], "static pod `" + dir + "/b.yaml`: duplicate uid \"same-uid\" (also in `" +
                              dir + "/a.yaml`): ignoring the one in `" + dir + "/b.yaml`");
  EXPECT_EQ(w->names(), (std::set<std::string>{"default/web-node1 a.yaml"}));

  // Same name and namespace in two files (their hashed uids differ).
  d.write("c.yaml", manifest("name: web"));
  runUntil(*w->loop, [&] { return w->errors.size() == 2; });
  ASSERT_EQ(w->errors.size(), 2u);
  EXPECT_EQ(w->errors[1], "static pod `" + dir +
                              "/c.yaml`: duplicate pod name \"default/web-node1\" "
                              "(also in `" +
                              dir + "/a.yaml`): ignoring the one in `" + dir + "/c.yaml`");
  EXPECT_EQ(w->names(), (std::set<std::string>{"default/web-node1 a.yaml"}));

  // The first one gone, the next in line runs.
  std::filesystem::remove(dir + "/a.yaml");
  runUntil(*w->loop, [&] { return !w->names().contains("default/web-node1 a.yaml"); });
  EXPECT_EQ(w->names(),
            (std::set<std::string>{"default/other-node1 b.yaml", "default/web-node1 c.yaml"}));
}

// kernelet runs unset seccomp profiles as RuntimeDefault unless told otherwise.
TEST(SeccompDefault, TrueByDefaultAndTheFlagOrTheFileTurnItOff) {
  EXPECT_TRUE(AgentConfig{}.seccomp_default);
  auto plain = runConfig({"--pod-manifest-path", "/m"});
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_TRUE(plain->seccomp_default);
  auto off = runConfig({"--pod-manifest-path", "/m", "--seccomp-default=false"});
  ASSERT_TRUE(off) << off.error().message();
  EXPECT_FALSE(off->seccomp_default);
  auto on = runConfig({"--pod-manifest-path", "/m", "--seccomp-default"});
  ASSERT_TRUE(on) << on.error().message();
  EXPECT_TRUE(on->seccomp_default);

  TempDir d;
  std::string file = d.write("kubelet.yaml",
                             "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: "
                             "KubeletConfiguration\nstaticPodPath: /m\nseccompDefault: false\n");
  auto from_file = runConfig({"--config", file});
  ASSERT_TRUE(from_file) << from_file.error().message();
  EXPECT_FALSE(from_file->seccomp_default);
  // The flag given wins over the file, as every kubelet flag does.
  auto flag_wins = runConfig({"--config", file, "--seccomp-default=true"});
  ASSERT_TRUE(flag_wins) << flag_wins.error().message();
  EXPECT_TRUE(flag_wins->seccomp_default);
  auto bad = runConfig({"--pod-manifest-path", "/m", "--seccomp-default=maybe"});
  EXPECT_FALSE(bad);
}

}  // namespace
}  // namespace kernelet::agent
