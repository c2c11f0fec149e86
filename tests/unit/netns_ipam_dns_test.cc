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

}  // namespace
}  // namespace kernelet::netns
