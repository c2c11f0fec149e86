#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "apiclient/kubeconfig.h"

namespace kernelet::apiclient {
namespace {

namespace fs = std::filesystem;

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kernelet-kubeconfig.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/pki");
    std::ofstream(dir_ + "/pki/ca.crt") << "CA PEM\n";
    std::ofstream(dir_ + "/pki/node.crt") << "CERT PEM\n";
    std::ofstream(dir_ + "/pki/node.key") << "KEY PEM\n";
    std::ofstream(dir_ + "/token") << "file-token\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& yaml) {
    std::string p = dir_ + "/config";
    std::ofstream(p) << yaml;
    return p;
  }
  std::string dir_;
};

TEST_F(KubeconfigTest, FilesRelativeToTheConfigAndTheCurrentContext) {
  std::string p = write(R"(
apiVersion: v1
kind: Config
current-context: node
clusters:
- name: other
  cluster: {server: "https://other:6443"}
- name: prod
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority: pki/ca.crt
    tls-server-name: kubernetes
contexts:
- name: node
  context: {cluster: prod, user: kubelet, namespace: kube-system}
users:
- name: kubelet
  user:
    client-certificate: pki/node.crt
    client-key: pki/node.key
)");
  auto a = loadKubeconfig(p);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->server, "https://10.0.0.1:6443");
  EXPECT_EQ(a->ca_pem, "CA PEM\n");
  EXPECT_EQ(a->tls_server_name, "kubernetes");
  EXPECT_EQ(a->client_cert_pem, "CERT PEM\n");
  EXPECT_EQ(a->client_key_pem, "KEY PEM\n");
  EXPECT_EQ(a->namespace_, "kube-system");
}

TEST_F(KubeconfigTest, DataFieldsTokensAndAnotherContext) {
  std::string p = write(R"(
current-context: a
clusters:
- {name: c, cluster: {server: "https://h:443", certificate-authority-data: Q0EgUEVNCg==, insecure-skip-tls-verify: true}}
contexts:
- {name: a, context: {cluster: c, user: t}}
- {name: b, context: {cluster: c, user: f}}
users:
- {name: t, user: {token: abc, client-certificate-data: Q0VSVA==, client-key-data: S0VZ}}
- {name: f, user: {tokenFile: token}}
)");
  auto a = loadKubeconfig(p);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->ca_pem, "CA PEM\n");
  EXPECT_TRUE(a->insecure_skip_tls_verify);
  EXPECT_EQ(a->token, "abc");
  EXPECT_EQ(a->client_cert_pem, "CERT");
  EXPECT_EQ(a->client_key_pem, "KEY");
  EXPECT_EQ(a->namespace_, "default");
  auto b = loadKubeconfig(p, "b");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->token, "file-token");
  EXPECT_EQ(b->token_file, dir_ + "/token");
}

TEST_F(KubeconfigTest, BrokenOnesNameTheFileAndTheField) {
  struct Case {
    const char* yaml;
    const char* error;
  } cases[] = {
      {"clusters: [", "line 1, column 1: end of sequence flow not found"},
      {"current-context: x\n", "current-context: \"x\" is not in contexts"},
      {"kind: Config\n", "current-context: not set and no context was asked for"},
      {"current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n",
       "contexts[a].context.cluster: \"c\" is not in clusters"},
      {"current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
       "clusters: [{name: c, cluster: {server: h}}]\n",
       "clusters[c].cluster.server: must be an http(s) URL, got \"h\""},
      {"current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
       "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority-data: '%%%'}}]\n"
       "users: [{name: u, user: {}}]\n",
       "clusters[c].cluster.certificate-authority-data: invalid base64"},
      {"current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
       "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority: nope.crt}}]\n",
       "clusters[c].cluster.certificate-authority: open `"},
      {"current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
       "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
       "users: [{name: u, user: {exec: {command: aws}}}]\n",
       "users[u].user.exec: not supported by kernelet"},
      {"current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
       "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
       "users: [{name: u, user: {client-certificate: pki/node.crt}}]\n",
       "users[u].user: client-certificate and client-key go together"},
  };
  for (const auto& c : cases) {
    std::string p = write(c.yaml);
    auto a = loadKubeconfig(p);
    ASSERT_FALSE(a) << c.yaml;
    std::string want = "kubeconfig `" + p + "`: " + c.error;
    EXPECT_EQ(a.error().message().substr(0, want.size()), want) << a.error().message();
  }
  auto missing = loadKubeconfig(dir_ + "/none");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "open `" + dir_ + "/none`: No such file or directory");
}

}  // namespace
}  // namespace kernelet::apiclient
