// The table of Pod fields (agent/model/pod_fields.h) against the API's own
// schema: every field path of a v1 Pod is classified, no entry is stale, the
// decoder refuses what the table refuses, and README.md lists it.

#include "agent/model/pod_fields.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agent/lifecycle/admission.h"
#include "agent/model/pod.h"

namespace kernelet::agent {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every field path of io.k8s.api.core.v1.Pod in the table's notation, each
// with whether it is a leaf (a scalar, a map of scalars, a list of scalars, or
// an object without properties such as Quantity) or an object on the way.
class SchemaPaths {
 public:
  explicit SchemaPaths(const rapidjson::Value& schemas) : schemas_(schemas) {
    walk("io.k8s.api.core.v1.Pod", "", {});
  }
  std::map<std::string, bool> paths;  // path -> leaf

 private:
  static std::string refOf(const rapidjson::Value& v) {
    if (!v.IsObject()) {
      return "";  // additionalProperties: true
    }
    if (v.HasMember("$ref")) {
      std::string r = v["$ref"].GetString();
      return r.substr(r.rfind('/') + 1);
    }
    if (v.HasMember("allOf") && v["allOf"].Size() == 1) {
      return refOf(v["allOf"][0]);
    }
    return "";
  }
  bool hasProperties(const std::string& type) const {
    return !type.empty() && schemas_.HasMember(type.c_str()) &&
           schemas_[type.c_str()].HasMember("properties");
  }
  void walk(const std::string& type, const std::string& path, std::set<std::string> seen) {
    ASSERT_TRUE(schemas_.HasMember(type.c_str())) << type;
    ASSERT_TRUE(seen.insert(type).second) << "recursive type " << type << " at " << path;
    for (const auto& m : schemas_[type.c_str()]["properties"].GetObject()) {
      std::string p = path.empty() ? m.name.GetString() : path + "." + m.name.GetString();
      const rapidjson::Value& v = m.value;
      std::string ref = refOf(v);
      std::string kind = v.HasMember("type") ? v["type"].GetString() : "";
      if (hasProperties(ref)) {
        paths[p] = false;
        walk(ref, p, seen);
      } else if (kind == "array" && hasProperties(refOf(v["items"]))) {
        paths[p] = false;
        paths[p + "[]"] = false;
        walk(refOf(v["items"]), p + "[]", seen);
      } else if (kind == "object" && v.HasMember("additionalProperties") &&
                 hasProperties(refOf(v["additionalProperties"]))) {
        paths[p] = false;
        paths[p + "{}"] = false;
        walk(refOf(v["additionalProperties"]), p + "{}", seen);
      } else {
        paths[p] = true;
      }
    }
  }
  const rapidjson::Value& schemas_;
};

const std::map<std::string, bool>& schemaPaths() {
  static const std::map<std::string, bool> paths = [] {
    rapidjson::Document d;
    std::string text = readFile(KERNELET_OPENAPI_V1);
    d.Parse(text.c_str());
    EXPECT_FALSE(d.HasParseError()) << KERNELET_OPENAPI_V1;
    if (d.HasParseError()) {
      return std::map<std::string, bool>();
    }
    return SchemaPaths(d["components"]["schemas"]).paths;
  }();
  return paths;
}

// The entry covering `path` that is not `path` itself: a refused or
// no-effect ancestor.
bool coveredByAncestor(const std::string& path) {
  for (size_t cut = path.find_last_of(".["); cut != std::string::npos;
       cut = path.find_last_of(".[", cut - 1)) {
    const PodField* f = podField(path.substr(0, cut));
    if (f != nullptr && f->path == path.substr(0, cut) && f->use != FieldUse::kImplemented) {
      return true;
    }
    if (cut == 0) {
      break;
    }
  }
  return false;
}

TEST(PodFields, EveryFieldOfTheSchemaIsClassified) {
  const auto& paths = schemaPaths();
  ASSERT_GT(paths.size(), 500u);  // the whole Pod, not a stub of it
  std::string missing;
  for (const auto& [path, leaf] : paths) {
    if (!leaf) {
      continue;  // an object: its leaves, or an entry above it, classify it
    }
    const PodField* f = podField(path);
    if (f == nullptr) {
      missing += "\n  " + path;
    }
  }
  EXPECT_EQ(missing, "") << "fields of the v1 Pod schema missing from agent/model/pod_fields.cc "
                            "(classify each as kImplemented, kRefused or kNoEffect):"
                         << missing;
}

TEST(PodFields, EveryEntryIsAFieldOfTheSchema) {
  const auto& paths = schemaPaths();
  ASSERT_FALSE(paths.empty());
  std::string stale, problems;
  for (const PodField& f : podFields()) {
    std::string path(f.path);
    auto it = paths.find(path);
    if (it == paths.end()) {
      stale += "\n  " + path;
      continue;
    }
    if (f.use == FieldUse::kImplemented && !it->second) {
      problems += "\n  " + path + ": an object cannot be implemented as a whole; list its fields";
    }
    if (coveredByAncestor(path)) {
      problems += "\n  " + path + ": under a refused or no-effect entry already";
    }
    if (!f.accepted.empty() && f.use != FieldUse::kRefused) {
      problems += "\n  " + path + ": accepted values belong to refused fields";
    }
  }
  EXPECT_EQ(stale, "") << "entries of agent/model/pod_fields.cc that the v1 Pod schema does not "
                          "have:"
                       << stale;
  EXPECT_EQ(problems, "") << problems;
}

// The README's list, as the table makes it: container fields once for the
// container lists that refuse them, `{a,b}` as in a shell.
std::string refusedList() {
  const std::vector<std::string> lists = {"containers", "initContainers", "ephemeralContainers"};
  std::map<std::string, std::vector<std::string>> by_field;  // container field -> lists
  std::map<std::string, std::string> accepted;               // line key -> accepted values
  std::vector<std::string> order;
  for (const PodField& f : podFields()) {
    if (f.use != FieldUse::kRefused) {
      continue;
    }
    std::string path(f.path), key = path;
    for (const auto& l : lists) {
      std::string prefix = "spec." + l + "[].";
      if (path.starts_with(prefix)) {
        key = "[]." + path.substr(prefix.size());
        by_field[key].push_back(l);
      }
    }
    if (!by_field.contains(key)) {
      by_field[key] = {};
    }
    if (std::find(order.begin(), order.end(), key) == order.end()) {
      order.push_back(key);
    }
    accepted[key] = std::string(f.accepted);
  }
  std::string out;
  for (const std::string& key : order) {
    const auto& in = by_field[key];
    std::string line = key;
    if (!in.empty()) {
      std::string names;
      for (const auto& l : lists) {
        if (std::find(in.begin(), in.end(), l) != in.end()) {
          names += (names.empty() ? "" : ",") + l;
        }
      }
      line = "spec." + (in.size() > 1 ? "{" + names + "}" : names) + key;
    }
    out += "- `" + line + "`";
    if (!accepted[key].empty()) {
      std::string values;
      std::string_view rest = accepted[key];
      for (;;) {
        size_t bar = rest.find('|');
        values += (values.empty() ? "" : ", ") + ("`" + std::string(rest.substr(0, bar)) + "`");
        if (bar == std::string_view::npos) {
          break;
        }
        rest.remove_prefix(bar + 1);
      }
      out += " (except " + values + ")";
    }
    out += "\n";
  }
  return out;
}

TEST(PodFields, TheReadmeListsTheRefusedFields) {
  std::string readme = readFile(KERNELET_README);
  const std::string begin = "<!-- refused-fields:begin -->\n", end = "<!-- refused-fields:end -->";
  size_t from = readme.find(begin), to = readme.find(end);
  ASSERT_NE(from, std::string::npos) << "README.md has no " << begin;
  ASSERT_NE(to, std::string::npos) << "README.md has no " << end;
  ASSERT_LT(from, to);
  std::string listed = readme.substr(from + begin.size(), to - from - begin.size());
  std::string want = refusedList();
  EXPECT_EQ(listed, want) << "README.md between the refused-fields markers must read:\n" << want;
}

// --- the decoder against the table ---

Result<std::vector<ManifestPod>> parse(const std::string& spec,
                                       RefusedFields refused = RefusedFields::kError) {
  return parseManifests("apiVersion: v1\nkind: Pod\nmetadata: {name: web, uid: u1}\nspec:\n" + spec,
                        "/m/web.yaml", refused);
}

std::string error(const std::string& spec) {
  auto r = parse(spec);
  return r ? "(parsed)" : r.error().message();
}

TEST(PodFields, ARefusedFieldIsAnErrorNamingFileLineAndTheConcreteField) {
  EXPECT_EQ(error(R"(  containers:
  - name: a
    image: busybox
  - name: b
    image: busybox
    volumeDevices: [{name: v, devicePath: /dev/xvda}]
)"),
            "parse manifest `/m/web.yaml`: line 10: spec.containers[1].volumeDevices: "
            "not supported by kernelet");
  EXPECT_EQ(error(R"(  containers:
  - name: a
    image: busybox
    securityContext: {procMount: Unmasked}
  volumes: [{name: v, emptyDir: {}}]
)"),
            "parse manifest `/m/web.yaml`: line 8: "
            "spec.containers[0].securityContext.procMount: not supported by kernelet");
  EXPECT_NE(error("  containers: [{name: a, image: i}]\n"
                  "  volumes: [{name: v, nfs: {server: s, path: /}}]\n")
                .find("line 6: spec.volumes[0].nfs: not supported by kernelet"),
            std::string::npos);
  EXPECT_NE(error("  hostnameOverride: other\n  containers: [{name: a, image: i}]\n")
                .find("line 5: spec.hostnameOverride: not supported by kernelet"),
            std::string::npos);
  EXPECT_NE(error("  initContainers: [{name: i, image: i, readinessProbe: {tcpSocket: {port: 1, "
                  "host: h}}}]\n  containers: [{name: a, image: i}]\n")
                .find("spec.initContainers[0].readinessProbe.tcpSocket.host: not supported by "
                      "kernelet"),
            std::string::npos);
  EXPECT_NE(error("  os: {name: windows}\n  containers: [{name: a, image: i}]\n")
                .find("spec.os.name: not supported by kernelet"),
            std::string::npos);
  EXPECT_NE(error("  hostUsers: false\n  containers: [{name: a, image: i}]\n")
                .find("spec.hostUsers: not supported by kernelet"),
            std::string::npos);
}

// What the API server writes into every pod it returns, and fields that do
// nothing on a node, pass; so do unset and empty refused fields.
TEST(PodFields, DefaultsEmptyValuesAndFieldsOfNoEffectPass) {
  auto pods = parse(R"(  containers:
  - name: a
    image: busybox
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    lifecycle: {}
    ports: [{containerPort: 80, protocol: TCP}]
    env:
    - name: CPU
      valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: "0"}}
    - name: NS
      valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}
    volumeMounts: [{name: v, mountPath: /v, subPath: "", mountPropagation: None}]
  volumes: [{name: v, emptyDir: {}}]
  enableServiceLinks: true
  hostPID: false
  os: {name: linux}
  schedulerName: default-scheduler
  tolerations: [{operator: Exists}]
  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {}}}
  priorityClassName: system-node-critical
  imagePullSecrets: []
status: {phase: Pending}
)");
  ASSERT_TRUE(pods) << pods.error().message();
  EXPECT_EQ((*pods)[0].pod.refused, "");
}

// The API server sets hostPort to containerPort on every port of a pod on the
// host's network: that pair asks for nothing and passes; any other hostPort
// is still refused.
TEST(PodFields, AHostNetworkPodsDefaultedHostPortPasses) {
  auto pods = parse(R"(  hostNetwork: true
  containers:
  - name: a
    image: i
    ports: [{containerPort: 8080, hostPort: 8080, protocol: TCP}]
)");
  ASSERT_TRUE(pods) << pods.error().message();
  EXPECT_NE(
      error("  hostNetwork: true\n"
            "  containers: [{name: a, image: i, ports: [{containerPort: 80, hostPort: 81}]}]\n")
          .find("spec.containers[0].ports[0].hostPort: not supported by kernelet"),
      std::string::npos);
  EXPECT_NE(
      error("  containers: [{name: a, image: i, ports: [{containerPort: 80, hostPort: 80}]}]\n")
          .find("spec.containers[0].ports[0].hostPort: not supported by kernelet"),
      std::string::npos);
}

// As the kubelet's decoder: a field the schema does not have is dropped.
TEST(PodFields, FieldsTheSchemaDoesNotHavePass) {
  auto pods = parse(
      "  containers: [{name: a, image: i, notAField: {lifecycle: 1}}]\n"
      "  futureField: 3\n");
  ASSERT_TRUE(pods) << pods.error().message();
}

TEST(PodFields, AnApiPodKeepsItsRefusedFieldForAdmission) {
  auto pods = parse(R"(  containers:
  - name: a
    image: i
  - name: b
    image: i
    volumeDevices: [{name: v, devicePath: /dev/xvda}]
)",
                    RefusedFields::kRecord);
  ASSERT_TRUE(pods) << pods.error().message();
  const Pod& refused = (*pods)[0].pod;
  EXPECT_EQ(refused.refused, "spec.containers[1].volumeDevices: not supported by kernelet");

  auto other = parse("  containers: [{name: a, image: i}]\n", RefusedFields::kRecord);
  ASSERT_TRUE(other);
  Pod beside = (*other)[0].pod;
  beside.uid = "u2";
  NodeResources node{.allocatable_milli_cpu = 4000, .allocatable_memory = int64_t{4} << 30};
  Admission a = admit(refused, {&beside}, node);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.reason, "UnsupportedPodSpec");
  EXPECT_EQ(a.message, "spec.containers[1].volumeDevices: not supported by kernelet");
  // The pod beside it is admitted as if the refused one were not there.
  EXPECT_TRUE(admit(beside, {}, node).admitted);
}

TEST(PodFields, SupplementalGroupsAreDecoded) {
  auto pods = parse(
      "  securityContext: {supplementalGroups: [5, 2000]}\n  containers: [{name: a, image: i}]\n");
  ASSERT_TRUE(pods) << pods.error().message();
  EXPECT_EQ((*pods)[0].pod.supplemental_groups, (std::vector<int64_t>{5, 2000}));
  EXPECT_NE(error("  securityContext: {supplementalGroups: [-1]}\n"
                  "  containers: [{name: a, image: i}]\n")
                .find("spec.securityContext.supplementalGroups[0]: must be between 0 and "
                      "2147483647, inclusive"),
            std::string::npos);
}

}  // namespace
}  // namespace kernelet::agent
