// The service environment variables, as the kubelet makes them
// (pkg/kubelet/envvars FromServices, kubelet_pods.go getServiceEnvVarMap and
// makeEnvironmentVariables): names, the Docker link family, which services,
// and how they meet the container's own env.

#include <gtest/gtest.h>

#include <algorithm>

#include "agent/model/service_env.h"
#include "agent/runtime/container_builder.h"

namespace kernelet::agent {
namespace {

apiclient::Service svc(const std::string& ns, const std::string& name, const std::string& ip,
                       std::vector<apiclient::ServicePort> ports) {
  return {.namespace_ = ns, .name = name, .cluster_ip = ip, .ports = std::move(ports)};
}

const apiclient::Service kMaster =
    svc("default", "kubernetes", "10.96.0.1", {{.name = "https", .port = 443}});

std::map<std::string, std::string> asMap(const EnvList& env) { return {env.begin(), env.end()}; }

TEST(ServiceEnv, TheMasterServiceAsEveryClusterPodSeesIt) {
  EnvList env = serviceEnv({kMaster}, "web", true);
  EnvList want = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                  {"KUBERNETES_SERVICE_PORT", "443"},
                  {"KUBERNETES_SERVICE_PORT_HTTPS", "443"},
                  {"KUBERNETES_PORT", "tcp://10.96.0.1:443"},
                  {"KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"},
                  {"KUBERNETES_PORT_443_TCP_PROTO", "tcp"},
                  {"KUBERNETES_PORT_443_TCP_PORT", "443"},
                  {"KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"}};
  EXPECT_EQ(env, want);
  // enableServiceLinks false drops the namespace's services, never the master's.
  EXPECT_EQ(serviceEnv({kMaster}, "web", false), want);
}

TEST(ServiceEnv, DashesMultiplePortsUdpAndUnnamedPorts) {
  auto env =
      asMap(serviceEnv({svc("web", "my-svc", "10.96.0.20",
                            {{.port = 8080}, {.name = "dns-udp", .protocol = "UDP", .port = 53}})},
                       "web", true));
  EXPECT_EQ(env["MY_SVC_SERVICE_HOST"], "10.96.0.20");
  EXPECT_EQ(env["MY_SVC_SERVICE_PORT"], "8080");  // the first port, named or not
  EXPECT_EQ(env["MY_SVC_SERVICE_PORT_DNS_UDP"], "53");
  EXPECT_EQ(env["MY_SVC_PORT"], "tcp://10.96.0.20:8080");  // the first port only
  EXPECT_EQ(env["MY_SVC_PORT_8080_TCP"], "tcp://10.96.0.20:8080");
  EXPECT_EQ(env["MY_SVC_PORT_53_UDP"], "udp://10.96.0.20:53");
  EXPECT_EQ(env["MY_SVC_PORT_53_UDP_PROTO"], "udp");
  EXPECT_EQ(env["MY_SVC_PORT_53_UDP_PORT"], "53");
  EXPECT_EQ(env["MY_SVC_PORT_53_UDP_ADDR"], "10.96.0.20");
  EXPECT_EQ(env.size(), 12u);  // host, port, one named port, link, 4 per port
  // IPv6: the link URL brackets the address.
  auto v6 = asMap(serviceEnv({svc("web", "six", "fd00::10", {{.port = 80}})}, "web", true));
  EXPECT_EQ(v6["SIX_PORT"], "tcp://[fd00::10]:80");
  EXPECT_EQ(v6["SIX_PORT_80_TCP_ADDR"], "fd00::10");
}

TEST(ServiceEnv, WhichServices) {
  std::vector<apiclient::Service> all = {
      kMaster,
      svc("web", "api", "10.96.0.30", {{.port = 80}}),
      svc("web", "headless", "None", {{.port = 80}}),
      svc("web", "no-ip", "", {{.port = 80}}),
      svc("other", "db", "10.96.0.40", {{.port = 5432}}),
      svc("default", "dflt", "10.96.0.50", {{.port = 81}}),
  };
  auto env = asMap(serviceEnv(all, "web", true));
  EXPECT_TRUE(env.contains("KUBERNETES_SERVICE_HOST"));
  EXPECT_TRUE(env.contains("API_SERVICE_HOST"));
  EXPECT_FALSE(env.contains("HEADLESS_SERVICE_HOST"));
  EXPECT_FALSE(env.contains("NO_IP_SERVICE_HOST"));
  EXPECT_FALSE(env.contains("DB_SERVICE_HOST"));    // another namespace
  EXPECT_FALSE(env.contains("DFLT_SERVICE_HOST"));  // default's others are default's own
  EXPECT_TRUE(asMap(serviceEnv(all, "default", true)).contains("DFLT_SERVICE_HOST"));
  auto off = asMap(serviceEnv(all, "web", false));
  EXPECT_TRUE(off.contains("KUBERNETES_SERVICE_HOST"));
  EXPECT_FALSE(off.contains("API_SERVICE_HOST"));
  // A "kubernetes" Service of the pod's own namespace wins over the master's.
  all.push_back(svc("web", "kubernetes", "10.96.0.60", {{.port = 6443}}));
  EXPECT_EQ(asMap(serviceEnv(all, "web", true))["KUBERNETES_SERVICE_HOST"], "10.96.0.60");
  EXPECT_EQ(asMap(serviceEnv(all, "web", false))["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
}

class FakeServices : public ServiceLister {
 public:
  std::optional<std::vector<apiclient::Service>> list;
  std::optional<std::vector<apiclient::Service>> services() const override { return list; }
};

std::map<std::string, std::string> envOf(const ContainerInput& in) {
  auto env = containerEnvironment(in, "host");
  EXPECT_TRUE(env) << env.error().message();
  std::map<std::string, std::string> out;
  for (const auto& kv : env.value_or(std::vector<std::string>{})) {
    out[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
  }
  return out;
}

TEST(ContainerEnvironment, ServiceVariablesMeetTheContainersOwn) {
  Pod pod;
  pod.name = "p";
  pod.namespace_ = "web";
  Container c{.name = "app"};
  c.env = {{.name = "MY_SVC_SERVICE_PORT", .value = "9999"},  // the container's wins
           {.name = "URL", .value = "http://$(MY_SVC_SERVICE_HOST):$(MY_SVC_SERVICE_PORT)"},
           {.name = "API", .value = "$(KUBERNETES_SERVICE_HOST)"}};
  pod.containers.push_back(c);
  FakeServices services;
  services.list = std::vector{kMaster, svc("web", "my-svc", "10.96.0.20", {{.port = 8080}})};
  ContainerInput in{.pod = &pod, .container = &pod.containers[0], .services = &services};
  in.image.env = {"PATH=/bin", "KUBERNETES_SERVICE_HOST=image"};
  auto env = envOf(in);
  EXPECT_EQ(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");  // over the image's
  EXPECT_EQ(env["MY_SVC_SERVICE_HOST"], "10.96.0.20");
  EXPECT_EQ(env["MY_SVC_SERVICE_PORT"], "9999");
  EXPECT_EQ(env["URL"], "http://10.96.0.20:9999");
  EXPECT_EQ(env["API"], "10.96.0.1");
  EXPECT_EQ(env["PATH"], "/bin");
  EXPECT_EQ(env["HOSTNAME"], "host");

  // enableServiceLinks: false.
  pod.enable_service_links = false;
  env = envOf(in);
  EXPECT_EQ(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
  EXPECT_FALSE(env.contains("MY_SVC_SERVICE_HOST"));
  EXPECT_EQ(env["URL"], "http://$(MY_SVC_SERVICE_HOST):9999");  // unknown: left as written

  // Not listed yet: the kubelet's error, except for a static pod.
  services.list.reset();
  auto err = containerEnvironment(in, "host");
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().message(),
            "services have not yet been read at least once, cannot construct envvars");
  pod.annotations["kubernetes.io/config.source"] = "file";
  env = envOf(in);
  EXPECT_EQ(env["KUBERNETES_SERVICE_HOST"], "image");  // none listed: the image's stays
  EXPECT_FALSE(env.contains("KUBERNETES_SERVICE_PORT"));

  // No API server: no service variables at all.
  in.services = nullptr;
  pod.annotations.clear();
  in.image.env = {"PATH=/bin"};
  env = envOf(in);
  EXPECT_FALSE(std::any_of(env.begin(), env.end(),
                           [](const auto& kv) { return kv.first.starts_with("KUBERNETES_"); }));
}

}  // namespace
}  // namespace kernelet::agent
