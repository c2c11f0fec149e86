// End-to-end in the test VM: a cluster-mode agent pulls from a registry that
// wants credentials (Debian's docker-registry on loopback, TLS, Basic auth).
// Without them the pod shows ErrImagePull / ImagePullBackOff in kubectl; with
// a kubernetes.io/dockerconfigjson Secret in imagePullSecrets, or its
// ServiceAccount's, it runs.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "support/api_server.h"
#include "support/privileged.h"
#include "support/process_util.h"
#include "support/registry_server.h"
#include "sys/fileio.h"

namespace kernelet {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

class ClusterPullE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    if (::access("/usr/bin/kubectl", X_OK) != 0 ||
        ::access("/usr/bin/docker-registry", X_OK) != 0) {
      GTEST_SKIP() << "kubectl or docker-registry is not installed";
    }
    base_ = "/tmp/kernelet-pull-" + std::to_string(::getpid());
    fs::create_directories(base_ + "/manifests");
    auto s = testing::ApiServer::start(base_ + "/api", {.validate_agent = "admin"});
    ASSERT_TRUE(s) << s.error().message();
    server_.emplace(std::move(*s));
    auto r = testing::RegistryServer::start(base_ + "/registry");
    ASSERT_TRUE(r) << r.error().message();
    registry_.emplace(std::move(*r));
    auto pushed =
        registry_->push(std::string(KERNELET_FIXTURES) + "/oci/busybox", "private/busybox", "v1");
    ASSERT_TRUE(pushed) << pushed.error().message();
    image_ = registry_->host() + "/private/busybox:v1";
    started_ = true;
  }

  void TearDown() override {
    if (!started_) {
      return;
    }
    if (agent_ > 0) {
      ::kill(agent_, SIGTERM);
      int st;
      ::waitpid(agent_, &st, 0);
    }
    EXPECT_EQ(server_->control("violations", "", false).value_or("?"), "[]")
        << "the agent sent what the schema refuses";
    registry_.reset();
    server_.reset();
    fs::remove_all(base_);
    for (const char* q : {"/kubepods/burstable", "/kubepods/besteffort", "/kubepods", ""}) {
      ::rmdir(
          (std::string("/sys/fs/cgroup/kernelet-pull-") + std::to_string(::getpid()) + q).c_str());
    }
  }

  void startAgent() {
    std::string pid = std::to_string(::getpid());
    // The registry's certificate is trusted as the system's store would be
    // (OpenSSL's SSL_CERT_FILE); the API server's CA is the kubeconfig's own.
    ::setenv("SSL_CERT_FILE", registry_->caFile().c_str(), 1);
    agent_ = testing::spawnLogged({KERNELET_BINARY,
                                   "run",
                                   "--port=0",
                                   "--kubeconfig",
                                   server_->kubeconfig(),
                                   "--pod-manifest-path",
                                   base_ + "/manifests",
                                   "--root-dir",
                                   base_ + "/root",
                                   "--pod-log-dir",
                                   base_ + "/logs",
                                   "--run-dir",
                                   "/run/kernelet-pull-" + pid,
                                   "--cgroup-root",
                                   "/kernelet-pull-" + pid,
                                   "--hostname-override",
                                   "node1",
                                   "-v",
                                   "2",
                                   "--stop-pods-on-exit"},
                                  base_ + "/agent.log");
    ::unsetenv("SSL_CERT_FILE");
  }

  std::string kubectl(const std::string& args) { return server_->kubectl(args); }

  std::string waitKubectl(const std::string& args,
                          const std::function<bool(const std::string&)>& ok,
                          const std::string& what, seconds timeout = seconds(90)) {
    auto deadline = steady_clock::now() + timeout;
    std::string out;
    while (steady_clock::now() < deadline) {
      out = kubectl(args);
      if (ok(out)) {
        return out;
      }
      std::this_thread::sleep_for(milliseconds(300));
    }
    ADD_FAILURE() << what << " not seen in " << timeout.count() << " s; last: " << out << "\n"
                  << readFile(base_ + "/agent.log").value_or("");
    return out;
  }

  void apply(const std::string& name, const std::string& yaml) {
    std::string file = base_ + "/" + name + ".yaml";
    std::ofstream(file) << yaml;
    std::string out = kubectl("apply -f " + file);
    ASSERT_NE(out.find("created"), std::string::npos) << out;
  }

  std::string pod(const std::string& name, const std::string& extra) {
    return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
           "}\nspec:\n  nodeName: node1\n  terminationGracePeriodSeconds: 2\n" + extra +
           "  containers:\n  - name: app\n    image: " + image_ +
           "\n    command: [sh, -c, 'echo pulled; sleep 3600']\n";
  }

  std::string base_, image_;
  std::optional<testing::ApiServer> server_;
  std::optional<testing::RegistryServer> registry_;
  pid_t agent_ = -1;
  bool started_ = false;
};

auto has(const std::string& needle) {
  return [needle](const std::string& s) { return s.find(needle) != std::string::npos; };
}

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
  std::string log = readFile(base_ + "/agent.log").value_or("");
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
