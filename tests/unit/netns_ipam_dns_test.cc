#include <gtest/gtest.h>

#include <filesystem>

#include "netns/dns_files.h"
#include "netns/ipam.h"

namespace kernelet::netns {
namespace {

class IpamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kernelet-ipam.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Ipam open(const std::string& cidr) {
    auto c = Ipv4Cidr::parse(cidr);
    EXPECT_TRUE(c);
    auto i = Ipam::open(dir_, *c);
    EXPECT_TRUE(i);
    return std::move(*i);
  }
  std::string dir_;
};

TEST_F(IpamTest, HandsOutAddressesAfterTheGatewayAndKeepsThem) {
  Ipam ipam = open("10.88.0.0/24");
  EXPECT_EQ(ipToString(ipam.allocate("a").value()), "10.88.0.2");
  EXPECT_EQ(ipToString(ipam.allocate("b").value()), "10.88.0.3");
  EXPECT_EQ(ipToString(ipam.allocate("a").value()), "10.88.0.2");  // same pod, same address
}

TEST_F(IpamTest, ARestartNeverHandsOutAnAddressInUse) {
  {
    Ipam first = open("10.88.0.0/24");
    ASSERT_TRUE(first.allocate("a"));
    ASSERT_TRUE(first.allocate("b"));
  }
  Ipam again = open("10.88.0.0/24");
  EXPECT_EQ(ipToString(again.allocate("c").value()), "10.88.0.4");
  EXPECT_EQ(ipToString(again.find("b")), "10.88.0.3");
}

TEST_F(IpamTest, ReleasedAddressesAreNotReusedAtOnce) {
  Ipam ipam = open("10.88.0.0/24");
  ASSERT_TRUE(ipam.allocate("a"));
  ASSERT_TRUE(ipam.release("a"));
  EXPECT_EQ(ipam.find("a"), 0u);
  EXPECT_EQ(ipToString(ipam.allocate("b").value()), "10.88.0.3");
  ASSERT_TRUE(ipam.release("nobody"));  // nothing held: fine
}

TEST_F(IpamTest, ExhaustionIsAnErrorForTheNextPodOnly) {
  Ipam ipam = open("10.88.0.0/29");  // .0 network, .1 gateway, .7 broadcast: 5 left
  for (int i = 0; i < 5; i++) {
    ASSERT_TRUE(ipam.allocate("p" + std::to_string(i)));
  }
  auto full = ipam.allocate("p5");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().message(),
            "allocate pod address `p5`: pod CIDR 10.88.0.0/29 is exhausted (5 addresses in use)");
  EXPECT_EQ(ipToString(ipam.allocate("p2").value()), "10.88.0.4");  // the others keep theirs
  ASSERT_TRUE(ipam.release("p3"));
  EXPECT_EQ(ipToString(ipam.allocate("p5").value()), "10.88.0.5");
}

TEST(Cidr, ParsesAndRefusesClearly) {
  auto c = Ipv4Cidr::parse("10.88.7.9/16");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->str(), "10.88.0.0/16");
  EXPECT_EQ(ipToString(c->gateway()), "10.88.0.1");
  EXPECT_EQ(ipToString(c->broadcast()), "10.88.255.255");
  for (const char* bad : {"10.88.0.0", "10.88.0.0/31", "10.88.0.0/x", "300.1.1.1/16", "/16"}) {
    auto r = Ipv4Cidr::parse(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message().find(bad), std::string::npos) << r.error().message();
  }
}

TEST(HostsFile, AsTheKubeletWritesIt) {
  HostsInput in{.pod_ip = "10.88.0.5",
                .hostname = "web-0",
                .subdomain = "web",
                .pod_namespace = "shop",
                .host_aliases = {{"1.2.3.4", {"foo.local", "bar.local"}}}};
  EXPECT_EQ(hostsFile(in),
            "# Kubernetes-managed hosts file.\n"
            "127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\n"
            "fe00::0\tip6-mcastprefix\n"
            "fe00::1\tip6-allnodes\n"
            "fe00::2\tip6-allrouters\n"
            "10.88.0.5\tweb-0.web.shop.svc.cluster.local\tweb-0\n"
            "\n# Entries added by HostAliases.\n"
            "1.2.3.4\tfoo.local\tbar.local\n");
  HostsInput host{.host_network = true, .node_hosts = "127.0.0.1 localhost\n"};
  EXPECT_EQ(hostsFile(host),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n");
}

const char* kNodeResolv =
    "# from DHCP\nnameserver 192.168.1.1\nnameserver 8.8.8.8\nsearch lan\noptions edns0\n";

TEST(ResolvConf, ClusterFirstUsesClusterDns) {
  DnsInput in{
      .node_resolv_conf = kNodeResolv, .cluster_dns = {"10.96.0.10"}, .pod_namespace = "shop"};
  EXPECT_EQ(resolvConf(in).value(),
            "nameserver 10.96.0.10\n"
            "search shop.svc.cluster.local svc.cluster.local cluster.local lan\n"
            "options ndots:5\n");
}

TEST(ResolvConf, DefaultAndHostNetworkUseTheNodes) {
  DnsInput def{.policy = "Default", .node_resolv_conf = kNodeResolv, .cluster_dns = {"10.96.0.10"}};
  EXPECT_EQ(resolvConf(def).value(),
            "nameserver 192.168.1.1\nnameserver 8.8.8.8\nsearch lan\noptions edns0\n");
  DnsInput hostnet{
      .host_network = true, .node_resolv_conf = kNodeResolv, .cluster_dns = {"10.96.0.10"}};
  EXPECT_EQ(resolvConf(hostnet).value(), resolvConf(def).value());
  // Without --cluster-dns, ClusterFirst falls back to the node's settings.
  DnsInput standalone{.node_resolv_conf = kNodeResolv};
  EXPECT_EQ(resolvConf(standalone).value(), resolvConf(def).value());
}

TEST(ResolvConf, DnsConfigMergesAndNoneNeedsANameserver) {
  DnsInput in{.policy = "None",
              .nameservers = {"1.1.1.1", "1.1.1.1", "9.9.9.9"},
              .searches = {"a.example"},
              .options = {{"ndots", "2"}, {"edns0", std::nullopt}}};
  EXPECT_EQ(resolvConf(in).value(),
            "nameserver 1.1.1.1\nnameserver 9.9.9.9\nsearch a.example\noptions ndots:2 edns0\n");
  DnsInput merged{.node_resolv_conf = kNodeResolv,
                  .cluster_dns = {"10.96.0.10"},
                  .nameservers = {"1.1.1.1", "2.2.2.2", "3.3.3.3"},
                  .options = {{"ndots", "1"}}};
  EXPECT_EQ(resolvConf(merged).value(),
            "nameserver 10.96.0.10\nnameserver 1.1.1.1\nnameserver 2.2.2.2\n"
            "search default.svc.cluster.local svc.cluster.local cluster.local lan\n"
            "options ndots:1\n");
  auto none = resolvConf(DnsInput{.policy = "None"});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(),
            "pod DNS `spec.dnsConfig.nameservers`: dnsPolicy None needs at least one nameserver");
  auto bad = resolvConf(DnsInput{.policy = "Sometimes"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "pod DNS `spec.dnsPolicy`: unknown policy \"Sometimes\"");
}

// Since the kubelet reads the node's file for them, hostNetwork pods get their
// aliases after it too.
TEST(HostsFile, HostNetworkPodsGetTheirAliasesAfterTheNodesFile) {
  HostsInput host{.host_network = true,
                  .node_hosts = "127.0.0.1 localhost\n",
                  .host_aliases = {{"127.0.0.1", {"foo.local", "bar.local"}},
                                   {"10.1.2.3", {"foo.remote", "bar.remote"}}}};
  EXPECT_EQ(hostsFile(host),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"
            "\n# Entries added by HostAliases.\n"
            "127.0.0.1\tfoo.local\tbar.local\n"
            "10.1.2.3\tfoo.remote\tbar.remote\n");
}

// The docs' example (dns-pod-service: "Pod's DNS Config").
TEST(ResolvConf, TheDocsDnsConfigExample) {
  DnsInput in{.policy = "None",
              .nameservers = {"192.0.2.1"},
              .searches = {"ns1.svc.cluster-domain.example", "my.dns.search.suffix"},
              .options = {{"ndots", "2"}, {"edns0", std::nullopt}}};
  std::vector<std::string> warnings;
  EXPECT_EQ(resolvConf(in, &warnings).value(),
            "nameserver 192.0.2.1\n"
            "search ns1.svc.cluster-domain.example my.dns.search.suffix\n"
            "options ndots:2 edns0\n");
  EXPECT_TRUE(warnings.empty());
  // An empty value is written as no value.
  DnsInput empty{.policy = "None", .nameservers = {"192.0.2.1"}, .options = {{"edns0", ""}}};
  EXPECT_EQ(resolvConf(empty).value(), "nameserver 192.0.2.1\noptions edns0\n");
}

TEST(ResolvConf, BeyondTheLimitsTheKubeletTrimsAndWarns) {
  DnsInput in{.node_resolv_conf = kNodeResolv,
              .cluster_dns = {"10.96.0.10"},
              .pod_namespace = "shop",
              .nameservers = {"1.1.1.1", "2.2.2.2", "3.3.3.3"}};
  for (int i = 0; i < 30; i++) {
    in.searches.push_back("d" + std::to_string(i) + ".example");
  }
  std::vector<std::string> warnings;
  std::string text = resolvConf(in, &warnings).value();
  EXPECT_NE(text.find("nameserver 10.96.0.10\nnameserver 1.1.1.1\nnameserver 2.2.2.2\nsearch "),
            std::string::npos)
      << text;
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0],
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied "
            "nameserver line is: 10.96.0.10 1.1.1.1 2.2.2.2");
  // 4 of the cluster's and the node's + 30: the first 32 stay.
  std::string line =
      "shop.svc.cluster.local svc.cluster.local cluster.local lan d0.example d1.example";
  for (int i = 2; i < 28; i++) {
    line += " d" + std::to_string(i) + ".example";
  }
  EXPECT_EQ(warnings[1],
            "Search Line limits were exceeded, some search paths have been omitted, the applied "
            "search line is: " +
                line);
  EXPECT_NE(text.find("search " + line + "\n"), std::string::npos) << text;

  // Too many characters: whole domains go from the end until the line fits 2048.
  DnsInput wide{.policy = "None", .nameservers = {"192.0.2.1"}};
  for (int i = 0; i < 10; i++) {
    wide.searches.push_back(std::string(240, 'a' + i) + ".example");  // 248 each
  }
  warnings.clear();
  text = resolvConf(wide, &warnings).value();
  ASSERT_EQ(warnings.size(), 1u);
  std::string kept;
  for (int i = 0; i < 8; i++) {  // 8 * 249 - 1 = 1991 <= 2048 < 2240
    kept += (i ? " " : "") + std::string(240, 'a' + i) + ".example";
  }
  EXPECT_NE(warnings[0].find("the applied search line is: " + kept), std::string::npos);
  EXPECT_EQ(warnings[0].size(), warnings[0].find(kept) + kept.size());

  // Overlong domains (more than 253 characters) are dropped.
  DnsInput overlong{
      .policy = "None", .nameservers = {"192.0.2.1"}, .searches = {std::string(254, 'x'), "ok"}};
  warnings.clear();
  EXPECT_EQ(resolvConf(overlong, &warnings).value(), "nameserver 192.0.2.1\nsearch ok\n");
  EXPECT_EQ(warnings.size(), 1u);
}

}  // namespace
}  // namespace kernelet::netns
