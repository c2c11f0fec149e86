// Issue #19 part D as a user sees it before anything runs: which sysctls a pod
// may set on the node (the kubelet's allowlist and its SysctlForbidden
// rejection), how the manifest's sysctls, hostAliases, dnsConfig and
// setHostnameAsFQDN decode and are validated, the pod's UTS hostname, and the
// /proc/sys paths the sandbox writes.

#include <gtest/gtest.h>

#include "agent/config/config.h"
#include "agent/lifecycle/admission.h"
#include "agent/lifecycle/sysctl_allowlist.h"
#include "agent/model/pod.h"
#include "agent/model/pod_names.h"
#include "agent/runtime/pod_sysctls.h"

namespace kernelet::agent {
namespace {

Result<Pod> parse(const std::string& spec) {
  TRY(auto pods, parseManifests("apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, "
                                "uid: u1}\nspec:\n  containers: [{name: app, image: busybox}]\n" +
                                    spec,
                                "/m/p.yaml"));
  return pods.at(0).pod;
}

std::string parseError(const std::string& spec) {
  auto p = parse(spec);
  return p ? "(parsed)" : p.error().message();
}

TEST(SafeSysctls, TheKubeletsSetGatedOnTheKernelVersion) {
  std::vector<std::string> legacy = {"kernel.shm_rmid_forced",
                                     "net.ipv4.ip_local_port_range",
                                     "net.ipv4.tcp_syncookies",
                                     "net.ipv4.ping_group_range",
                                     "net.ipv4.ip_unprivileged_port_start",
                                     "net.ipv4.tcp_keepalive_time",
                                     "net.ipv4.tcp_fin_timeout",
                                     "net.ipv4.tcp_keepalive_intvl",
                                     "net.ipv4.tcp_keepalive_probes"};
  EXPECT_EQ(safeSysctls("3.10.0-1160.el7.x86_64"), legacy);
  std::vector<std::string> v316 = legacy;
  v316.push_back("net.ipv4.ip_local_reserved_ports");
  EXPECT_EQ(safeSysctls("4.14.1"), v316);
  std::vector<std::string> all = v316;
  all.push_back("net.ipv4.tcp_rmem");
  all.push_back("net.ipv4.tcp_wmem");
  EXPECT_EQ(safeSysctls("6.1.0-18-amd64"), all);
  EXPECT_EQ(safeSysctls("4.15"), all);
  // An unreadable version keeps the legacy list, as the kubelet falls back to it.
  EXPECT_EQ(safeSysctls("garbage"), legacy);
}

TEST(SysctlAllowlist, SafeUnsafePatternsAndForbidden) {
  std::vector<std::string> patterns = safeSysctls("6.1.0");
  patterns.push_back("kernel.msg*");
  patterns.push_back("net.core.somaxconn");
  auto w = SysctlAllowlist::create(patterns);
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(w->check("net.ipv4.ip_local_port_range", false, false), std::nullopt);
  EXPECT_EQ(w->check("kernel.shm_rmid_forced", false, false), std::nullopt);
  EXPECT_EQ(w->check("kernel.msgmax", false, false), std::nullopt);
  EXPECT_EQ(w->check("kernel.msgmnb", false, false), std::nullopt);
  EXPECT_EQ(w->check("net.core.somaxconn", false, false), std::nullopt);
  // The slash form is the same sysctl.
  EXPECT_EQ(w->check("net/ipv4/ip_local_port_range", false, false), std::nullopt);
  EXPECT_EQ(w->check("kernel.shmmax", false, false), "\"kernel.shmmax\" not allowlisted");
  EXPECT_EQ(w->check("kernel/shmmax", false, false), "\"kernel.shmmax\" not allowlisted");
  EXPECT_EQ(w->check("vm.swappiness", false, false), "\"vm.swappiness\" not allowlisted");
  // Sharing the node's namespace: the value would be the node's.
  EXPECT_EQ(w->check("net.ipv4.ip_local_port_range", true, false),
            "\"net.ipv4.ip_local_port_range\" not allowed with host net enabled");
  EXPECT_EQ(w->check("net.core.somaxconn", true, false),
            "\"net.core.somaxconn\" not allowed with host net enabled");
  EXPECT_EQ(w->check("kernel.msgmax", false, true),
            "\"kernel.msgmax\" not allowed with host ipc enabled");
  EXPECT_EQ(w->check("kernel.shm_rmid_forced", true, false), std::nullopt);
  // Nothing allowed on a node without an allowlist.
  EXPECT_EQ(SysctlAllowlist().check("kernel.shm_rmid_forced", false, false),
            "\"kernel.shm_rmid_forced\" not allowlisted");
}

TEST(SysctlAllowlist, PatternsTheKubeletRefusesToStartWith) {
  auto global = SysctlAllowlist::create({"kernel.core_pattern"});
  ASSERT_FALSE(global);
  EXPECT_EQ(global.error().message(),
            "allowed unsafe sysctls `kernel.core_pattern`: the sysctl \"kernel.core_pattern\" are "
            "not known to be namespaced");
  auto prefix = SysctlAllowlist::create({"kernel.*"});
  ASSERT_FALSE(prefix);
  EXPECT_NE(
      prefix.error().message().find("the sysctls \"kernel.*\" are not known to be namespaced"),
      std::string::npos);
  auto grammar = SysctlAllowlist::create({"Net.*"});
  ASSERT_FALSE(grammar);
  EXPECT_NE(grammar.error().message().find("sysctl \"Net.*\" must have at most 253 characters"),
            std::string::npos);
  for (const char* ok : {"net.*", "fs.mqueue.*", "kernel.sem", "net/ipv4/tcp_*", "kernel.shm*"}) {
    EXPECT_TRUE(SysctlAllowlist::create({ok})) << ok;
  }
  for (const char* bad : {"", "*x", "net..x", "net.*.x", ".net", "net.", "kernel.msg**"}) {
    EXPECT_FALSE(SysctlAllowlist::create({bad})) << bad;
  }
}

TEST(SysctlAllowlist, TheConfigFlagAndFileFeedTheNodesAllowlist) {
  AgentConfig config;
  config.allowed_unsafe_sysctls = {"kernel.msg*"};
  NodeResources node = nodeResources(4000, int64_t{4} << 30, config);
  EXPECT_EQ(node.sysctls.check("kernel.msgmax", false, false), std::nullopt);
  EXPECT_EQ(node.sysctls.check("net.ipv4.ip_local_port_range", false, false), std::nullopt);
  NodeResources plain = nodeResources(4000, int64_t{4} << 30, AgentConfig{});
  EXPECT_EQ(plain.sysctls.check("kernel.msgmax", false, false),
            "\"kernel.msgmax\" not allowlisted");
}

TEST(SysctlAdmission, AForbiddenSysctlRejectsThePodAsTheKubeletDoes) {
  NodeResources node{.allocatable_milli_cpu = 4000, .allocatable_memory = int64_t{4} << 30};
  node.sysctls = SysctlAllowlist::forNode({}).value();
  auto ok = parse(
      "  securityContext:\n    sysctls:\n"
      "    - {name: net.ipv4.ip_local_port_range, value: '1024 65000'}\n"
      "    - {name: kernel.shm_rmid_forced, value: '1'}\n");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_TRUE(admit(*ok, {}, node).admitted);
  auto unsafe = parse("  securityContext:\n    sysctls: [{name: kernel.msgmax, value: '65536'}]\n");
  ASSERT_TRUE(unsafe);
  Admission a = admit(*unsafe, {}, node);
  EXPECT_FALSE(a.admitted);
  EXPECT_EQ(a.reason, "SysctlForbidden");
  EXPECT_EQ(a.message, "forbidden sysctl: \"kernel.msgmax\" not allowlisted");
  auto hostnet = parse(
      "  hostNetwork: true\n  securityContext:\n"
      "    sysctls: [{name: net/ipv4/ip_local_port_range, value: '1024 65000'}]\n");
  ASSERT_TRUE(hostnet);
  Admission h = admit(*hostnet, {}, node);
  EXPECT_EQ(h.reason, "SysctlForbidden");
  EXPECT_EQ(h.message,
            "forbidden sysctl: \"net.ipv4.ip_local_port_range\" not allowed with host net enabled");
}

TEST(SysctlDecode, NamesAndValuesAsTheApiValidatesThem) {
  auto p = parse(
      "  securityContext:\n    sysctls:\n"
      "    - {name: net/ipv4/ip_local_port_range, value: '1024 65000'}\n"
      "    - {name: kernel.shm_rmid_forced, value: '1'}\n");
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(p->sysctls.size(), 2u);
  EXPECT_EQ(p->sysctls[0].name, "net/ipv4/ip_local_port_range");
  EXPECT_EQ(p->sysctls[0].value, "1024 65000");
  EXPECT_EQ(parseError("  securityContext:\n    sysctls: [{value: '1'}]\n"),
            "parse manifest `/m/p.yaml`: line 7: spec.securityContext.sysctls[0].name: Required "
            "value");
  EXPECT_EQ(parseError("  securityContext:\n    sysctls: [{name: kernel.sem}]\n"),
            "parse manifest `/m/p.yaml`: line 7: spec.securityContext.sysctls[0].value: Required "
            "value");
  EXPECT_NE(parseError("  securityContext:\n    sysctls: [{name: Kernel.Sem, value: '1'}]\n")
                .find("sysctls[0].name: Invalid value: \"Kernel.Sem\": must have at most 253 "
                      "characters and match regex"),
            std::string::npos);
  EXPECT_NE(parseError("  securityContext:\n    sysctls: [{name: kernel.sem, value: '1'}, "
                       "{name: kernel.sem, value: '2'}]\n")
                .find("sysctls[1].name: Duplicate value: \"kernel.sem\""),
            std::string::npos);
  for (const char* bad : {"../x", "net..x", "net.", "-net.x", "net.x_"}) {
    EXPECT_FALSE(isSysctlName(bad)) << bad;
  }
  EXPECT_TRUE(isSysctlName("net.ipv4.conf.eth0/100.rp_filter"));
}

TEST(SysctlDecode, ProcPathsOfBothForms) {
  EXPECT_EQ(normalizeSysctlName("net/ipv4/ip_local_port_range"), "net.ipv4.ip_local_port_range");
  EXPECT_EQ(normalizeSysctlName("net/ipv4/conf/eno2.100/rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter");
  EXPECT_EQ(normalizeSysctlName("net.ipv4.conf.eno2/100.rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter");
  EXPECT_EQ(sysctlProcPath("net.ipv4.ip_local_port_range"), "net/ipv4/ip_local_port_range");
  EXPECT_EQ(sysctlProcPath("net/ipv4/ip_local_port_range"), "net/ipv4/ip_local_port_range");
  EXPECT_EQ(sysctlProcPath("net.ipv4.conf.eno2/100.rp_filter"), "net/ipv4/conf/eno2.100/rp_filter");
}

TEST(SysctlDecode, TheSandboxRefusesWhatIsNotNamespacedWhateverAdmissionSaid) {
  // The same check `kernelet oci` makes: before any namespace is joined.
  auto host = writePodSysctls({{"kernel.core_pattern", "x"}}, "/nonexistent/ipc", "");
  ASSERT_FALSE(host);
  EXPECT_EQ(host.error().message(), "sysctl `kernel.core_pattern`: not a namespaced sysctl");
  auto net = writePodSysctls({{"net.ipv4.ip_forward", "1"}}, "/nonexistent/ipc", "");
  ASSERT_FALSE(net);
  EXPECT_EQ(net.error().message(),
            "sysctl `net.ipv4.ip_forward`: needs a private network namespace");
  EXPECT_TRUE(writePodSysctls({}, "/nonexistent/ipc", ""));
}

TEST(HostAliasesDecode, IpsAndHostnamesAreValidated) {
  auto p = parse(
      "  hostAliases:\n  - ip: 127.0.0.1\n    hostnames: [foo.local, bar.local]\n"
      "  - ip: 10.1.2.3\n    hostnames: [foo.remote, bar.remote]\n");
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(p->host_aliases.size(), 2u);
  EXPECT_EQ(p->host_aliases[1].ip, "10.1.2.3");
  EXPECT_EQ(p->host_aliases[1].hostnames, (std::vector<std::string>{"foo.remote", "bar.remote"}));
  EXPECT_EQ(parseError("  hostAliases: [{ip: 10.1.2, hostnames: [a]}]\n"),
            "parse manifest `/m/p.yaml`: line 6: spec.hostAliases[0].ip: Invalid value: "
            "\"10.1.2\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
  EXPECT_NE(parseError("  hostAliases: [{ip: '::1', hostnames: [Bad_Name]}]\n")
                .find("spec.hostAliases[0].hostnames[0]: Invalid value: \"Bad_Name\""),
            std::string::npos);
}

TEST(DnsConfigDecode, FieldsAndTheApisLimits) {
  auto p = parse(
      "  dnsPolicy: None\n  dnsConfig:\n    nameservers: [192.0.2.1]\n"
      "    searches: [ns1.svc.cluster-domain.example, my.dns.search.suffix]\n"
      "    options:\n    - {name: ndots, value: '2'}\n    - name: edns0\n");
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_TRUE(p->dns_config);
  EXPECT_EQ(p->dns_config->nameservers, (std::vector<std::string>{"192.0.2.1"}));
  EXPECT_EQ(p->dns_config->searches.size(), 2u);
  ASSERT_EQ(p->dns_config->options.size(), 2u);
  EXPECT_EQ(p->dns_config->options[0].value, "2");
  EXPECT_EQ(p->dns_config->options[1].value, std::nullopt);
  EXPECT_EQ(parseError("  dnsPolicy: None\n"),
            "parse manifest `/m/p.yaml`: line 6: spec.dnsConfig: Required value: must provide "
            "`dnsConfig` when `dnsPolicy` is None");
  EXPECT_EQ(parseError("  dnsPolicy: None\n  dnsConfig: {searches: [a.example]}\n"),
            "parse manifest `/m/p.yaml`: line 7: spec.dnsConfig.nameservers: Required value: must "
            "provide at least one DNS nameserver when `dnsPolicy` is None");
  EXPECT_NE(parseError("  dnsConfig: {nameservers: [1.1.1.1, 1.1.1.2, 1.1.1.3, 1.1.1.4]}\n")
                .find("spec.dnsConfig.nameservers: Invalid value: must not have more than 3 "
                      "nameservers"),
            std::string::npos);
  EXPECT_NE(parseError("  dnsConfig: {nameservers: [dns.example]}\n")
                .find("spec.dnsConfig.nameservers[0]: Invalid value: \"dns.example\": must be a "
                      "valid IP address"),
            std::string::npos);
  EXPECT_NE(parseError("  dnsConfig: {options: [{value: '1'}]}\n")
                .find("spec.dnsConfig.options[0]: Required value: must not be empty"),
            std::string::npos);
  std::string many;
  for (int i = 0; i < 33; i++) {
    many += (i ? ", d" : "d") + std::to_string(i) + ".example";
  }
  EXPECT_NE(parseError("  dnsConfig: {searches: [" + many + "]}\n")
                .find("must not have more than 32 search paths"),
            std::string::npos);
  EXPECT_TRUE(parse("  dnsConfig: {searches: [example.com.]}\n"));  // a trailing dot is fine
}

TEST(PodHostname, FqdnWithSubdomainAndItsLengthLimit) {
  Pod p;
  p.name = "web-0";
  p.namespace_ = "shop";
  EXPECT_EQ(podKernelHostname(p, "cluster.local").value(), "web-0");
  p.hostname = "db";
  p.subdomain = "backend";
  EXPECT_EQ(podKernelHostname(p, "cluster.local").value(), "db");  // not asked for the FQDN
  p.set_hostname_as_fqdn = true;
  EXPECT_EQ(podKernelHostname(p, "cluster.local").value(), "db.backend.shop.svc.cluster.local");
  p.subdomain.clear();
  EXPECT_EQ(podKernelHostname(p, "cluster.local").value(), "db");  // no domain: the short name
  p.subdomain = "backend";
  p.hostname = std::string(40, 'h');
  auto long_fqdn = podKernelHostname(p, "cluster.local");
  ASSERT_FALSE(long_fqdn);
  std::string fqdn = p.hostname + ".backend.shop.svc.cluster.local";
  EXPECT_EQ(long_fqdn.error().message(),
            "failed to construct FQDN from pod hostname and cluster domain, FQDN " + fqdn +
                " is too long (64 characters is the max, 71 characters requested)");
  // A long pod name is cut to 63 without a trailing '-' or '.'.
  Pod named;
  named.name = std::string(62, 'a') + "-b";
  EXPECT_EQ(podHostName(named, "cluster.local").hostname, std::string(62, 'a'));
}

TEST(PodHostname, SetHostnameAsFqdnDecodes) {
  auto p = parse("  hostname: db\n  subdomain: backend\n  setHostnameAsFQDN: true\n");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_TRUE(p->set_hostname_as_fqdn);
  EXPECT_EQ(podKernelHostname(*p, "cluster.local").value(), "db.backend.shop.svc.cluster.local");
}

}  // namespace
}  // namespace kernelet::agent
