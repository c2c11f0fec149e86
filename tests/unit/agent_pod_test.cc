#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/model/pod.h"

namespace kernelet::agent {
namespace {

const char* kTwoPods = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 5
  initContainers:
  - name: setup
    image: fixtures.kernelet.test/busybox:latest
    command: [sh, -c, "echo ready > /work/flag"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: app
    image: fixtures.kernelet.test/busybox:latest
    args: [kt-http, "8080"]
    env:
    - {name: GREETING, value: hi}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: "1", memory: 128Mi}
    securityContext:
      runAsUser: 1000
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
      seccompProfile: {type: RuntimeDefault}
    volumeMounts: [{name: work, mountPath: /work, readOnly: true}]
  volumes:
  - {name: work, emptyDir: {medium: Memory, sizeLimit: 16Mi}}
---
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "json-pod", "namespace": "tools"},
 "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "busybox"}]}}
)";

TEST(Manifest, YamlAndJsonDocumentsOfOneFile) {
  auto pods = parseManifests(kTwoPods, "/etc/kernelet/manifests/web.yaml");
  ASSERT_TRUE(pods) << pods.error().message();
  ASSERT_EQ(pods->size(), 2u);
  const Pod& web = (*pods)[0].pod;
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.namespace_, "default");
  EXPECT_EQ(web.restart_policy, "OnFailure");
  EXPECT_EQ(web.termination_grace_period_seconds, 5);
  ASSERT_EQ(web.init_containers.size(), 1u);
  const Container& app = web.containers[0];
  EXPECT_EQ(app.args, (std::vector<std::string>{"kt-http", "8080"}));
  EXPECT_EQ(app.env[1].field_path, "metadata.name");
  EXPECT_EQ(app.resources.requests.at("cpu").milliValue(), 250);
  EXPECT_EQ(app.resources.limits.at("memory").value(), 128 << 20);
  EXPECT_EQ(app.security_context.run_as_user, 1000);
  EXPECT_EQ(app.security_context.capabilities_drop, std::vector<std::string>{"ALL"});
  EXPECT_EQ(web.volumes[0].kind, Volume::Kind::kEmptyDir);
  EXPECT_EQ(web.volumes[0].medium, "Memory");
  EXPECT_EQ(podQos({web.init_containers[0].resources, app.resources}), QosClass::kBurstable);
  const Pod& json = (*pods)[1].pod;
  EXPECT_EQ(json.namespace_, "tools");
  EXPECT_TRUE(json.host_network);
  EXPECT_EQ((*pods)[1].line, 34);  // where its document starts
}

void expectError(const std::string& yaml, const std::string& error) {
  auto pods = parseManifests(yaml, "/m/p.yaml");
  ASSERT_FALSE(pods) << yaml;
  EXPECT_EQ(pods.error().message(), "parse manifest `/m/p.yaml`: " + error);
}

TEST(Manifest, ErrorsNameFileLineAndField) {
  expectError("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: c\n",
              "line 6: spec.containers[0].image: required");
  expectError("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: []}\n",
              "line 3: metadata.name: \"Bad_Name\" is not a DNS subdomain");
  expectError("apiVersion: v1\nkind: Deployment\nmetadata: {name: a}\n",
              "line 1: kind: expected apiVersion v1, kind Pod; got v1, Deployment");
  expectError("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: []\n",
              "line 5: spec.containers: at least one container is required");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i, resources: {limits: {memory: 1Gx}}}\n",
      "line 6: spec.containers[0].resources.limits.memory: unknown suffix \"Gx\"");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  restartPolicy: Sometimes\n"
      "  containers: [{name: c, image: i}]\n",
      "line 5: spec.restartPolicy: must be Always, OnFailure or Never");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i}\n  - {name: c, image: j}\n",
      "line 7: spec.containers[1].name: duplicate container name \"c\"");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n"
      "  terminationGracePeriodSeconds: soon\n  containers: [{name: c, image: i}]\n",
      "line 5: spec.terminationGracePeriodSeconds: wrong type");
  expectError("apiVersion: v1\nkind: Pod\nmetadata: {name: a\n",
              "line 4: end of map flow not found");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i, resources: {requests: {cpu: 2}, limits: {cpu: 1}}}\n",
      "line 6: spec.containers[0].resources.requests.cpu: must be less than or equal to the cpu "
      "limit");
}

TEST(Manifest, TerminationMessageFieldsAndTheActiveDeadlineAreCheckedAsTheApiDoes) {
  const std::string head = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n";
  auto pods = parseManifests(head +
                                 "  activeDeadlineSeconds: 30\n  containers:\n"
                                 "  - {name: c, image: i}\n"
                                 "  - {name: d, image: i, terminationMessagePath: /tmp/why, "
                                 "terminationMessagePolicy: FallbackToLogsOnError}\n"
                                 "  - {name: e, image: i, terminationMessagePath: \"\"}\n",
                             "/m/p.yaml");
  ASSERT_TRUE(pods) << pods.error().message();
  const Pod& p = (*pods)[0].pod;
  EXPECT_EQ(p.active_deadline_seconds, 30);
  EXPECT_EQ(p.containers[0].termination_message_path, "/dev/termination-log");
  EXPECT_EQ(p.containers[0].termination_message_policy, "File");
  EXPECT_EQ(p.containers[1].termination_message_path, "/tmp/why");
  EXPECT_EQ(p.containers[1].termination_message_policy, "FallbackToLogsOnError");
  EXPECT_EQ(p.containers[2].termination_message_path, "/dev/termination-log") << "the default";
  expectError(head + "  containers:\n  - {name: c, image: i, terminationMessagePath: log}\n",
              "line 6: spec.containers[0].terminationMessagePath: must be an absolute path");
  expectError(
      head + "  containers:\n  - {name: c, image: i, terminationMessagePath: /x/../etc/p}\n",
      "line 6: spec.containers[0].terminationMessagePath: must not contain '..'");
  expectError(head + "  containers:\n  - {name: c, image: i, terminationMessagePolicy: Logs}\n",
              "line 6: spec.containers[0].terminationMessagePolicy: Unsupported value: \"Logs\": "
              "supported values: \"File\", \"FallbackToLogsOnError\"");
  expectError(head + "  activeDeadlineSeconds: 0\n  containers: [{name: c, image: i}]\n",
              "line 5: spec.activeDeadlineSeconds: must be greater than or equal to 1");
}

std::string podWithAnnotation(const std::string& value) {
  return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  annotations:\n    big: " + value +
         "\n  labels: {n: " + value +
         "}\nspec:\n  containers:\n  - name: c\n    image: i\n"
         "    args: [" +
         value + "]\n  unknownField: " + value + "\n";
}

// Numbers that no int64 or double holds, and one of 300,000 digits, killed
// the agent (an exception out of the JSON conversion, a stack overflow in
// std::regex). Annotations, labels and args are strings by the schema: they
// keep the text, in the decoded pod and in the mirror pod's JSON alike.
TEST(Manifest, NumbersOfAnySizeAreStringsWhereTheSchemaSaysString) {
  for (const std::string& value :
       {std::string(300000, '7'), std::string("0.") + std::string(300000, '1'),
        std::string("123456789012345678901234567890"), std::string("-99999999999999999999"),
        std::string("1e400"), std::string("-1.5e-400")}) {
    auto pods = parseManifests(podWithAnnotation(value), "/m/p.yaml");
    ASSERT_TRUE(pods) << pods.error().message();
    ASSERT_EQ(pods->size(), 1u);
    const Pod& p = (*pods)[0].pod;
    EXPECT_EQ(p.annotations.at("big"), value);
    EXPECT_EQ(p.labels.at("n"), value);
    EXPECT_EQ(p.containers[0].args, std::vector<std::string>{value});
    rapidjson::Document d;
    d.Parse((*pods)[0].json.c_str());
    ASSERT_FALSE(d.HasParseError()) << value.substr(0, 40);
    ASSERT_TRUE(d["metadata"]["annotations"]["big"].IsString());
    EXPECT_EQ(d["metadata"]["annotations"]["big"].GetString(), value);
    EXPECT_TRUE(d["metadata"]["labels"]["n"].IsString());
    EXPECT_TRUE(d["spec"]["containers"][0]["args"][0].IsString());
    // A field kernelet does not read keeps a number JSON can hold, else the text.
    EXPECT_TRUE(d["spec"].HasMember("unknownField"));
  }
  auto small = parseManifests(podWithAnnotation("42"), "/m/p.yaml");
  ASSERT_TRUE(small);
  rapidjson::Document d;
  d.Parse((*small)[0].json.c_str());
  EXPECT_EQ(d["spec"]["unknownField"].GetInt64(), 42);
  EXPECT_EQ(std::string(d["metadata"]["annotations"]["big"].GetString()), "42");
}

TEST(Manifest, ValuesOfTheWrongShapeAreErrorsNamingTheField) {
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  annotations:\n    x: {y: z}\n"
      "spec: {containers: [{name: c, image: i}]}\n",
      "line 6: metadata.annotations.x: must be a string");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: [x]\n"
      "spec: {containers: [{name: c, image: i}]}\n",
      "line 5: metadata.labels: must be a map of strings");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n"
      "  terminationGracePeriodSeconds: 99999999999999999999\n  containers: [{name: c, image: "
      "i}]\n",
      "line 5: spec.terminationGracePeriodSeconds: must be an integer between "
      "-9223372036854775808 and 9223372036854775807");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - name: c\n    image: i\n    ports: [{containerPort: " +
          std::string(300000, '9') + "}]\n",
      "line 8: spec.containers[0].ports[0].containerPort: must be an integer between "
      "-2147483648 and 2147483647");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i, resources: {limits: {memory: 1e400}}}\n",
      "line 6: spec.containers[0].resources.limits.memory: out of range");
}

// The API server refuses negative quantities in requests and limits (a
// negative limit ran the container unlimited), and requests above limits.
// Volume names are path components of the pod's volume dirs and the keys its
// mounts use: one emptyDir and one configMap both named x must not leave the
// mount of x to whichever came last (read-write for a configMap).
TEST(Manifest, VolumeNamesAreUniqueDnsLabels) {
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: i}]\n"
      "  volumes:\n  - {name: x, emptyDir: {}}\n  - {name: x, configMap: {name: cm}}\n",
      "line 8: spec.volumes[1].name: Duplicate value: \"x\"");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: i}]\n"
      "  volumes:\n  - {name: ../../etc, emptyDir: {}}\n",
      "line 7: spec.volumes[0].name: Invalid value: \"../../etc\": must be a DNS label");
}

TEST(Manifest, NegativeQuantitiesAreRefusedAsTheApiServerDoes) {
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i, resources: {limits: {memory: -1, cpu: 1}}}\n",
      "line 6: spec.containers[0].resources.limits.memory: Invalid value: \"-1\": must be greater "
      "than or equal to 0");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i, resources: {limits: {cpu: -1}}}\n",
      "line 6: spec.containers[0].resources.limits.cpu: Invalid value: \"-1\": must be greater "
      "than or equal to 0");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  initContainers:\n"
      "  - {name: s, image: i, resources: {requests: {ephemeral-storage: -1Ki}}}\n"
      "  containers: [{name: c, image: i}]\n",
      "line 6: spec.initContainers[0].resources.requests.ephemeral-storage: Invalid value: "
      "\"-1Ki\": must be greater than or equal to 0");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i, resources: {requests: {memory: 2Gi}, limits: {memory: 1Gi}}}\n",
      "line 6: spec.containers[0].resources.requests.memory: must be less than or equal to the "
      "memory limit");
  expectError(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: i}]\n"
      "  volumes:\n  - name: v\n    emptyDir: {sizeLimit: -64Mi}\n",
      "line 8: spec.volumes[0].emptyDir.sizeLimit: Invalid value: \"-64Mi\": must be greater than "
      "or equal to 0");
  auto zero = parseManifests(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i, resources: {requests: {cpu: 0}, limits: {memory: \"0\"}}}\n",
      "/m/p.yaml");
  EXPECT_TRUE(zero) << zero.error().message();
}

}  // namespace
}  // namespace kernelet::agent

namespace kernelet::agent {
namespace {

// parseManifests in a child that has a few seconds and (outside ASan, which
// needs its address space) 1 GiB: "exit: MESSAGE" or what ended the child.
// A hang or a runaway allocation fails the test instead of the test run.
std::string parseInChild(const std::string& text) {
  int fds[2];
  if (::pipe(fds) != 0) {
    return "pipe failed";
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(5);
#if !defined(__SANITIZE_ADDRESS__)
    rlimit as{1ul << 30, 1ul << 30};
    ::setrlimit(RLIMIT_AS, &as);
#endif
    auto pods = parseManifests(text, "/m/p.yaml");
    std::string out = pods ? "parsed " + std::to_string(pods->size()) : pods.error().message();
    (void)!::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status));
  }
  return "exit: " + out;
}

const char* kPod =
    "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n"
    "spec: {containers: [{name: c, image: i}]}\n";

// The manifest fuzzer's reproducer: a JSON pod followed by a stray ',' (there
// "{}}_}", where the '}' closing the object left ",\"status\"..." behind) made
// yaml-cpp 0.7's LoadAll add null documents for ever, gigabytes in seconds.
TEST(Manifest, StrayCommaAfterADocumentIsAnErrorNotAHang) {
  const std::string json = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},)"
                           R"("spec":{"containers":[{"name":"c","image":"i"}]}})";
  const std::string prefix = "exit: parse manifest `/m/p.yaml`: ";
  EXPECT_EQ(parseInChild(json + R"(,"status":{"phase":"Pending"}})" + "\n---\n" + kPod),
            prefix + "line 1, column " + std::to_string(json.size() + 1) +
                ": \",\" cannot start a document (a ',' outside [] or {}?)");
  EXPECT_EQ(parseInChild("{},"),
            prefix + "line 1, column 3: \",\" cannot start a document (a ',' outside [] or {}?)");
  EXPECT_EQ(parseInChild(std::string(kPod) + "---\n,\n"),
            prefix + "line 6, column 1: \",\" cannot start a document (a ',' outside [] or {}?)");
  // A ',' inside a plain scalar or a flow collection is no such thing.
  EXPECT_EQ(parseInChild(std::string(kPod) + "status: {message: a, b}\n---\n" + json),
            "exit: parsed 2");
  // Nor are empty documents, markers and directives, whose documents start apart.
  EXPECT_EQ(parseInChild("%YAML 1.2\n---\n...\n---\n---\n" + std::string(kPod) + "...\n---\n"),
            "exit: parsed 1");
}

// yaml-cpp shares an aliased node, but the decoder and the mirror pod's JSON
// walk it once per alias: nine levels of ten aliases are 10^9 nodes. And an
// alias inside its own anchor makes the document a cycle, which a walk
// follows until the stack overflows. Aliases that repeat a little still work.
TEST(Manifest, AliasesCannotExpandWithoutBoundOrLoop) {
  std::string laughs = std::string(kPod) + "status:\n  l0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; i++) {
    std::string a = "*a" + std::to_string(i - 1);
    laughs += "  l" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + a;
    for (int j = 1; j < 10; j++) {
      laughs += ", " + a;
    }
    laughs += "]\n";
  }
  const std::string prefix = "exit: parse manifest `/m/p.yaml`: ";
  EXPECT_EQ(parseInChild(laughs),
            prefix +
                "line 1: the document expands to more than 1048576 nodes (aliases count "
                "what they repeat)");
  EXPECT_EQ(parseInChild(std::string(kPod) + "status: &s {conditions: [*s]}\n"),
            prefix + "line 5: an alias inside the node it refers to");

  auto pods = parseManifests(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
      "  - {name: c, image: i, env: &env [{name: A, value: x}, {name: B, value: y}]}\n"
      "  - {name: d, image: i, env: *env}\n",
      "/m/p.yaml");
  ASSERT_TRUE(pods) << pods.error().message();
  EXPECT_EQ((*pods)[0].pod.containers[1].env.size(), 2u);
  EXPECT_NE((*pods)[0].json.find(R"("name":"d","image":"i","env":[{"name":"A")"), std::string::npos)
      << (*pods)[0].json;
}

}  // namespace
}  // namespace kernelet::agent
