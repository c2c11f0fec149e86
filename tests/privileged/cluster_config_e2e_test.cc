// End-to-end in the test VM: ConfigMaps, Secrets, service-account tokens and
// the service variables reach a cluster-mode agent's containers and stay
// current (cluster_e2e_test has the node and pod cases). A cluster of its
// own: the case counts every watch the agent holds, which another case's
// pods would add to.

#include <chrono>
#include <string>
#include <thread>

#include "support/e2e_cluster.h"
#include "support/privileged.h"

namespace kernelet {
namespace {

using namespace std::chrono;
using testing::has;
using testing::podYaml;

const std::string kImage = testing::kFixtureImage;

class ClusterConfigE2E : public testing::E2eClusterTest {
 protected:
  // Tokens live 20 s (the agent renews them after 16), so the case sees a renewal.
  testing::E2eCluster::Options options() const override {
    return {.name = "config", .server = {.validate_agent = "admin", .token_ttl = 20}};
  }
  std::string waitOutput(const std::string& pod, const std::string& needle, seconds timeout) {
    return c_->waitOutput(pod, needle, timeout);
  }
  std::string containerOutput(const std::string& pod) { return c_->containerOutput(pod); }
};

// And the service variables (KUBERNETES_SERVICE_*, enableServiceLinks).
TEST_F(ClusterConfigE2E, ConfigMapsSecretsAndTokensReachTheContainerAndStayCurrent) {
  c_->startAgent();
  // (kubectl create configmap sends protobuf, which the test server does not speak.)
  apply("settings",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {level: debug, "
        "color: blue}\n");
  apply("creds",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata: {password: "
        "aHVudGVyMg==}\n");
  const std::string sa = "/var/run/secrets/kubernetes.io/serviceaccount";
  // Prints the env, the files, and each new value of the level and the token.
  apply("my-svc",
        "apiVersion: v1\nkind: Service\nmetadata: {name: my-svc}\nspec:\n  ports:\n  - {port: "
        "8080}\n");
  std::string command =
      "env | grep -E \"KUBERNETES_SERVICE|KUBERNETES_PORT|MY_SVC\" | sort; "
      "echo LEVEL=$LEVEL PASSWORD=$PASSWORD CFG_color=$CFG_color; echo secret=$(cat "
      "/etc/sec/password) ns=$(cat " +
      sa + "/namespace) ca=$(head -1 " + sa +
      "/ca.crt); while true; do l=$(cat /etc/cfg/level); t=$(cat " + sa +
      "/token); [ \"$l\" != \"$pl\" ] && echo level=$l; [ \"$t\" != \"$pt\" ] && echo "
      "token=$t; pl=$l; pt=$t; sleep 0.5; done";
  std::string yaml = podYaml("cfg", command,
                             "  volumes:\n  - {name: cfg, configMap: {name: settings}}\n"
                             "  - {name: sec, secret: {secretName: creds}}\n") +
                     "    env:\n    - name: LEVEL\n      valueFrom: {configMapKeyRef: {name: "
                     "settings, key: level}}\n    - name: PASSWORD\n      valueFrom: "
                     "{secretKeyRef: {name: creds, key: password}}\n    envFrom:\n    - "
                     "{prefix: CFG_, configMapRef: {name: settings}}\n    volumeMounts:\n    - "
                     "{name: cfg, mountPath: /etc/cfg}\n    - {name: sec, mountPath: /etc/sec}\n";
  apply("cfg", yaml);
  waitKubectl("get pods", has("cfg    1/1     Running"), "cfg Running");
  std::string out = waitOutput("cfg", "level=debug", seconds(30));
  EXPECT_NE(out.find("LEVEL=debug PASSWORD=hunter2 CFG_color=blue"), std::string::npos) << out;
  // The service variables: the API server's (10.96.0.1:443) and my-svc's,
  // a Service of the pod's namespace made before the pod.
  std::string svc_ip = kubectl("get service my-svc -o jsonpath={.spec.clusterIP}");
  ASSERT_TRUE(svc_ip.starts_with("10.96.")) << svc_ip;
  for (const std::string& var :
       {std::string("KUBERNETES_SERVICE_HOST=10.96.0.1"),
        std::string("KUBERNETES_SERVICE_PORT=443"),
        std::string("KUBERNETES_SERVICE_PORT_HTTPS=443"),
        std::string("KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443"), "MY_SVC_SERVICE_HOST=" + svc_ip,
        std::string("MY_SVC_SERVICE_PORT=8080"), "MY_SVC_PORT_8080_TCP_ADDR=" + svc_ip}) {
    EXPECT_NE(out.find(var + "\n"), std::string::npos) << var << " not in " << out;
  }
  // enableServiceLinks: false: the API server's variables, not the namespace's.
  apply("nolinks", podYaml("nolinks",
                           "env | grep -E \"KUBERNETES_SERVICE|MY_SVC\"; echo end-of-env; "
                           "exec sleep 600",
                           "  enableServiceLinks: false\n"));
  std::string nolinks = waitOutput("nolinks", "end-of-env", seconds(60));
  EXPECT_NE(nolinks.find("KUBERNETES_SERVICE_HOST=10.96.0.1"), std::string::npos) << nolinks;
  EXPECT_EQ(nolinks.find("MY_SVC"), std::string::npos) << nolinks;
  EXPECT_NE(out.find("secret=hunter2 ns=default ca=-----BEGIN CERTIFICATE-----"), std::string::npos)
      << out;
  // The token is the one the API server issued for this pod.
  std::string tokens = c_->server().control("tokens", "", false).value_or("");
  size_t at = out.find("token=");
  ASSERT_NE(at, std::string::npos) << out;
  std::string token = out.substr(at + 6, out.find('\n', at) - at - 6);
  EXPECT_NE(tokens.find("\"pod\": \"cfg\", \"token\": \"" + token + "\""), std::string::npos)
      << token << " not in " << tokens;

  // A changed ConfigMap reaches the file (the env stays as it started).
  kubectl("patch configmap settings -p '{\"data\":{\"level\":\"info\"}}'");
  waitOutput("cfg", "level=info", seconds(20));
  // The token is renewed before it expires (20 s here): a second one appears.
  out = waitOutput("cfg", "token=", seconds(1));
  auto renewed = [&] {
    std::string o = containerOutput("cfg");
    return o.find("token=", o.find("token=") + 1) != std::string::npos;
  };
  auto deadline = steady_clock::now() + seconds(40);
  while (!renewed() && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(500));
  }
  EXPECT_TRUE(renewed()) << containerOutput("cfg");
  EXPECT_EQ(kubectl("get pod cfg -o jsonpath={.status.containerStatuses[0].restartCount}"), "0");

  // A key that is not there yet: CreateContainerConfigError with the kubelet's
  // message, then Running as soon as the ConfigMap has it.
  apply("late", podYaml("late", "echo got=$K; sleep 600") +
                    "    env:\n    - name: K\n      valueFrom: {configMapKeyRef: {name: later, "
                    "key: k}}\n");
  waitKubectl("get pods late", has("CreateContainerConfigError"), "CreateContainerConfigError");
  EXPECT_EQ(
      kubectl("get pod late -o jsonpath={.status.containerStatuses[0].state.waiting.message}"),
      "configmap \"later\" not found");
  apply("later", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later}\ndata: {k: v}\n");
  waitKubectl("get pods late", has("1/1     Running"), "late Running", seconds(30));
  waitOutput("late", "got=v", seconds(10));

  // A pod whose ServiceAccount does not exist is refused by the API, as admission does.
  std::string refused = kubectl("run nosa --image=" + kImage +
                                " --overrides='{\"spec\":{\"serviceAccountName\":\"nope\"}}'");
  EXPECT_NE(refused.find("serviceaccount \"nope\" not found"), std::string::npos) << refused;

  // Each object has a watch of its own while a pod refers to it, and no longer.
  std::string watches = c_->server().control("watches", "", false).value_or("");
  for (const char* name : {"settings", "creds", "later", "kube-root-ca.crt"}) {
    EXPECT_NE(watches.find(std::string("metadata.name%3D") + name), std::string::npos)
        << name << " not watched: " << watches;
  }
  kubectl("delete pod cfg late nolinks --wait=true");
  auto gone = steady_clock::now() + seconds(10);
  while (steady_clock::now() < gone) {
    watches = c_->server().control("watches", "", false).value_or("");
    if (watches.find("/configmaps") == std::string::npos &&
        watches.find("/secrets") == std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(300));
  }
  EXPECT_EQ(watches.find("/configmaps"), std::string::npos) << watches;
  EXPECT_EQ(watches.find("/secrets"), std::string::npos) << watches;
}

}  // namespace
}  // namespace kernelet
