// End-to-end in the test VM: a cluster-mode agent pulls from a registry that
// wants credentials (Debian's docker-registry on loopback, TLS, Basic auth).
// Without them the pod shows ErrImagePull / ImagePullBackOff in kubectl; with
// a kubernetes.io/dockerconfigjson Secret in imagePullSecrets, or its
// ServiceAccount's, it runs.

#include <cstdlib>
#include <optional>
#include <string>

#include "support/e2e_cluster.h"
#include "support/privileged.h"
#include "support/registry_server.h"

namespace kernelet {
namespace {

using testing::has;

class ClusterPullE2E : public testing::E2eClusterTest {
 protected:
  // No image imported: the pods pull theirs.
  testing::E2eCluster::Options options() const override {
    return {.name = "pull", .server = {.validate_agent = "admin"}, .images = {}};
  }

  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    KERNELET_REQUIRE_TOOLS("/usr/bin/docker-registry");
    E2eClusterTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    auto r = testing::RegistryServer::start(c_->base() + "/registry");
    ASSERT_TRUE(r) << r.error().message();
    registry_.emplace(std::move(*r));
    auto pushed =
        registry_->push(std::string(KERNELET_FIXTURES) + "/oci/busybox", "private/busybox", "v1");
    ASSERT_TRUE(pushed) << pushed.error().message();
    image_ = registry_->host() + "/private/busybox:v1";
  }

  void TearDown() override {
    if (c_ != nullptr) {
      c_->stopAgent();  // before its registry goes
    }
    registry_.reset();
    E2eClusterTest::TearDown();
  }

  void startAgent() {
    // The registry's certificate is trusted as the system's store would be
    // (OpenSSL's SSL_CERT_FILE); the API server's CA is the kubeconfig's own.
    ::setenv("SSL_CERT_FILE", registry_->caFile().c_str(), 1);
    c_->startAgent();
    ::unsetenv("SSL_CERT_FILE");
  }

  std::string pod(const std::string& name, const std::string& extra) {
    return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
           "}\nspec:\n  nodeName: node1\n  terminationGracePeriodSeconds: 2\n" + extra +
           "  containers:\n  - name: app\n    image: " + image_ +
           "\n    command: [sh, -c, 'echo pulled; sleep 3600']\n";
  }

  std::string image_;
  std::optional<testing::RegistryServer> registry_;
};

TEST_F(ClusterPullE2E, APrivateImageNeedsThePodsPullSecret) {
  startAgent();
  // No credentials: the pull fails, then backs off, as kubectl shows it.
  apply("nocreds", pod("nocreds", ""));
  waitKubectl("get pod nocreds", has("ErrImagePull"), "ErrImagePull");
  waitKubectl("get pod nocreds", has("ImagePullBackOff"), "ImagePullBackOff");
  std::string described = kubectl("describe pod nocreds");
  for (const std::string& e :
       {"Pulling image \"" + image_ + "\"", "Failed to pull image \"" + image_ + "\"",
        std::string("Error: ErrImagePull"), "Back-off pulling image \"" + image_ + "\"",
        std::string("Error: ImagePullBackOff")}) {
    EXPECT_NE(described.find(e), std::string::npos) << e << "\n" << described;
  }

  // A dockerconfigjson Secret for the registry (user:secret), and a pod naming it.
  std::string config =
      "{\"auths\":{\"" + registry_->host() + "\":{\"auth\":\"dXNlcjpzZWNyZXQ=\"}}}";
  apply("regcred",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred}\n"
        "type: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '" +
            config + "'\n");
  apply("withcreds", pod("withcreds", "  imagePullSecrets: [{name: regcred}, {name: absent}]\n"));
  waitKubectl("get pod withcreds", has("1/1     Running"), "withcreds Running");
  described = kubectl("describe pod withcreds");
  EXPECT_NE(described.find("Successfully pulled image \"" + image_ + "\" in "), std::string::npos)
      << described;
  EXPECT_NE(described.find("Unable to retrieve some image pull secrets (absent); attempting to "
                           "pull the image may not succeed."),
            std::string::npos)
      << described;
  // The agent never logs a credential.
  std::string log = c_->agentLog();
  EXPECT_EQ(log.find("dXNlcjpzZWNyZXQ="), std::string::npos);
  EXPECT_EQ(log.find("user:secret"), std::string::npos);
}

TEST_F(ClusterPullE2E, AServiceAccountsPullSecretsAreThePodsWhenItNamesNone) {
  startAgent();
  std::string config =
      "{\"auths\":{\"" + registry_->host() + "\":{\"auth\":\"dXNlcjpzZWNyZXQ=\"}}}";
  apply("regcred",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred}\n"
        "type: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '" +
            config + "'\n");
  apply("puller",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: puller}\n"
        "imagePullSecrets: [{name: regcred}]\n");
  apply("viasa", pod("viasa", "  serviceAccountName: puller\n"));
  EXPECT_NE(kubectl("get pod viasa -o jsonpath={.spec.imagePullSecrets[0].name}").find("regcred"),
            std::string::npos);
  waitKubectl("get pod viasa", has("1/1     Running"), "viasa Running");
}

}  // namespace
}  // namespace kernelet
