// The node server's settings: the kubelet's flags and KubeletConfiguration
// fields, v1beta1's defaults (anonymous off), bad values refused by name,
// and /configz showing what is in effect.
#include <gtest/gtest.h>

#include "agent/app/cli.h"
#include "agent/config/config.h"
#include "agent/server/node_endpoints.h"
#include "support/temp_dir.h"

namespace kernelet::agent {
namespace {

using testing::TempDir;

Result<AgentConfig> run(std::vector<std::string> args) {
  args.insert(args.begin(), {"--kubeconfig", "/nonexistent/kubeconfig"});
  return runConfig(args);
}

TEST(ServerConfig, DefaultsAreV1beta1sButAnonymousIsOff) {
  auto c = run({});
  ASSERT_TRUE(c) << c.error().message();
  const ServerSettings& s = c->server;
  EXPECT_EQ(s.address, "0.0.0.0");
  EXPECT_EQ(s.port, 10250);
  EXPECT_EQ(s.tls_min_version, "VersionTLS12");
  EXPECT_FALSE(s.anonymous);
  EXPECT_TRUE(s.webhook_authn);
  EXPECT_EQ(s.webhook_cache_ttl, 120);
  EXPECT_EQ(s.authorization_mode, "Webhook");
  EXPECT_EQ(s.authz_cache_authorized_ttl, 300);
  EXPECT_EQ(s.authz_cache_unauthorized_ttl, 30);
  EXPECT_EQ(s.streaming_idle_timeout, 4 * 3600);  // streamingConnectionIdleTimeout: 4h
}

TEST(ServerConfig, FlagsAreTheKubelets) {
  auto c =
      run({"--address=127.0.0.1", "--port=0", "--tls-cert-file=/c.crt",
           "--tls-private-key-file=/c.key", "--cert-dir=/pki", "--tls-min-version=VersionTLS13",
           "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256",
           "--client-ca-file=/ca.crt", "--anonymous-auth=true",
           "--authentication-token-webhook=false", "--authentication-token-webhook-cache-ttl=1m30s",
           "--authorization-mode=AlwaysAllow", "--authorization-webhook-cache-authorized-ttl=10m",
           "--authorization-webhook-cache-unauthorized-ttl=5s",
           "--streaming-connection-idle-timeout=30m"});
  ASSERT_TRUE(c) << c.error().message();
  const ServerSettings& s = c->server;
  EXPECT_EQ(s.address, "127.0.0.1");
  EXPECT_EQ(s.port, 0);
  EXPECT_EQ(s.tls_cert_file, "/c.crt");
  EXPECT_EQ(s.cert_dir, "/pki");
  EXPECT_EQ(s.tls_min_version, "VersionTLS13");
  EXPECT_EQ(s.tls_cipher_suites.size(), 2u);
  EXPECT_EQ(s.client_ca_file, "/ca.crt");
  EXPECT_TRUE(s.anonymous);
  EXPECT_FALSE(s.webhook_authn);
  EXPECT_EQ(s.webhook_cache_ttl, 90);
  EXPECT_EQ(s.authorization_mode, "AlwaysAllow");
  EXPECT_EQ(s.authz_cache_authorized_ttl, 600);
  EXPECT_EQ(s.authz_cache_unauthorized_ttl, 5);
  EXPECT_EQ(s.streaming_idle_timeout, 1800);
}

TEST(ServerConfig, BadValuesAreRefusedNamingTheFlag) {
  struct Case {
    std::string arg, named;
  };
  for (const auto& c : std::vector<Case>{
           {"--port=70000", "--port"},
           {"--port=-1", "--port"},
           {"--address=not-an-ip", "--address"},
           {"--tls-min-version=VersionTLS10", "--tls-min-version"},
           {"--tls-cipher-suites=TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_RC4_128_SHA"},
           {"--authorization-mode=Node", "--authorization-mode"},
           {"--authentication-token-webhook-cache-ttl=soon",
            "--authentication-token-webhook-cache-ttl"},
           {"--tls-cert-file=/only-the-cert", "--tls-private-key-file"},
           {"--streaming-connection-idle-timeout=-1s", "--streaming-connection-idle-timeout"},
       }) {
    auto r = run({c.arg});
    ASSERT_FALSE(r) << c.arg;
    EXPECT_NE(r.error().message().find(c.named), std::string::npos)
        << c.arg << ": " << r.error().message();
  }
  // Standalone, nobody authorizes: anonymous would make the server open.
  auto standalone = runConfig({"--pod-manifest-path=/m", "--anonymous-auth=true"});
  ASSERT_FALSE(standalone);
  EXPECT_NE(standalone.error().message().find("--anonymous-auth"), std::string::npos);
}

TEST(ServerConfig, FileFieldsAndFlagsOverThem) {
  TempDir d;
  std::string f = d.write("config.yaml", R"(apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 11250
tlsCertFile: /srv.crt
tlsPrivateKeyFile: /srv.key
tlsMinVersion: VersionTLS13
tlsCipherSuites: [TLS_AES_256_GCM_SHA384]
streamingConnectionIdleTimeout: 1h30m
authentication:
  x509:
    clientCAFile: /ca.pem
  webhook:
    enabled: false
    cacheTTL: 3m
  anonymous:
    enabled: true
authorization:
  mode: AlwaysAllow
  webhook:
    cacheAuthorizedTTL: 1m
    cacheUnauthorizedTTL: 10s
)");
  auto c = run({"--config", f, "--port=0"});
  ASSERT_TRUE(c) << c.error().message();
  const ServerSettings& s = c->server;
  EXPECT_EQ(s.address, "127.0.0.1");
  EXPECT_EQ(s.port, 0);  // the flag wins
  EXPECT_EQ(s.tls_cert_file, "/srv.crt");
  EXPECT_EQ(s.tls_private_key_file, "/srv.key");
  EXPECT_EQ(s.tls_min_version, "VersionTLS13");
  EXPECT_EQ(s.tls_cipher_suites, std::vector<std::string>{"TLS_AES_256_GCM_SHA384"});
  EXPECT_EQ(s.client_ca_file, "/ca.pem");
  EXPECT_FALSE(s.webhook_authn);
  EXPECT_EQ(s.webhook_cache_ttl, 180);
  EXPECT_TRUE(s.anonymous);
  EXPECT_EQ(s.authorization_mode, "AlwaysAllow");
  EXPECT_EQ(s.authz_cache_authorized_ttl, 60);
  EXPECT_EQ(s.authz_cache_unauthorized_ttl, 10);
  EXPECT_EQ(s.streaming_idle_timeout, 5400);

  // /configz shows them with the same names.
  std::string z = server::configzJson(*c);
  for (const char* want :
       {"\"kubeletconfig\":{", "\"port\":0", "\"tlsMinVersion\":\"VersionTLS13\"",
        "\"cacheTTL\":\"3m0s\"", "\"clientCAFile\":\"/ca.pem\"", "\"mode\":\"AlwaysAllow\"",
        "\"cacheUnauthorizedTTL\":\"10s\"", "\"anonymous\":{\"enabled\":true}",
        "\"streamingConnectionIdleTimeout\":\"1h30m0s\""}) {
    EXPECT_NE(z.find(want), std::string::npos) << want << " in " << z;
  }
}

TEST(ServerConfig, BadFileFieldsAreRefusedByName) {
  TempDir d;
  auto load = [&](const std::string& body) {
    AgentConfig c;
    return loadKubeletConfiguration(
        d.write("c.yaml",
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n" + body),
        c);
  };
  struct Case {
    std::string body, named;
  };
  for (const auto& c : std::vector<Case>{
           {"port: 99999\n", "port"},
           {"tlsMinVersion: VersionTLS11\n", "tlsMinVersion"},
           {"tlsCipherSuites: [NOPE]\n", "NOPE"},
           {"authorization:\n  mode: RBAC\n", "authorization.mode"},
           {"authorization:\n  webhook:\n    cacheAuthorizedTtl: 1m\n",
            "authorization.webhook.cacheAuthorizedTtl"},
           {"authentication:\n  anonymous: true\n", "authentication.anonymous"},
           {"authentication:\n  webhook:\n    cacheTTL: forever\n", "cacheTTL"},
           {"streamingConnectionIdleTimeout: 4 hours\n", "streamingConnectionIdleTimeout"},
       }) {
    auto r = load(c.body);
    ASSERT_FALSE(r) << c.body;
    EXPECT_NE(r.error().message().find(c.named), std::string::npos)
        << c.body << ": " << r.error().message();
  }
}

TEST(ServerConfig, GoDurations) {
  EXPECT_EQ(server::goDuration(0), "0s");
  EXPECT_EQ(server::goDuration(30), "30s");
  EXPECT_EQ(server::goDuration(120), "2m0s");
  EXPECT_EQ(server::goDuration(3661), "1h1m1s");
}

}  // namespace
}  // namespace kernelet::agent
