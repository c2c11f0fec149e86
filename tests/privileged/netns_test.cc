// Pod networking for real, in the test VM only: never on the host's root
// network namespace.
#include "netns/netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "isolation/isolation.h"
#include "netns/dns_files.h"
#include "netns/netlink.h"
#include "support/privileged.h"
#include "support/process_util.h"

namespace kernelet::netns {
namespace {

namespace fs = std::filesystem;
using kernelet::testing::argvOf;
using kernelet::testing::countEntries;
using kernelet::testing::countLines;
using kernelet::testing::readAll;

// Runs the host's static busybox inside the namespace at `ns`; returns its exit status.
int inPod(const std::string& ns, std::vector<std::string> args, std::string* out = nullptr) {
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(ns.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
      ::_exit(126);
    }
    ::dup2(p[1], 1);
    ::dup2(p[1], 2);
    args.insert(args.begin(), "/bin/busybox");
    std::vector<char*> argv = argvOf(args);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(p[1]);
  std::string text = readAll(p[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (out != nullptr) {
    *out = text;
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Starts a process in the pod's namespace in the background.
pid_t spawnInPod(const std::string& ns, std::vector<std::string> argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(ns.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
      ::_exit(126);
    }
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    std::vector<char*> args = argvOf(argv);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

std::string helper(const char* name) { return std::string(KERNELET_HELPERS_DIR) + "/" + name; }

// An HTTP GET from this (the node's) namespace, with retries while the server starts.
std::string httpGet(const std::string& ip, int port) {
  for (int attempt = 0; attempt < 100; attempt++) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{.sin_family = AF_INET, .sin_port = htons(static_cast<uint16_t>(port))};
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      const char req[] = "GET / HTTP/1.0\r\n\r\n";
      (void)::write(s, req, sizeof req - 1);
      std::string resp;
      char buf[1024];
      ssize_t n;
      while ((n = ::read(s, buf, sizeof buf)) > 0) {
        resp.append(buf, static_cast<size_t>(n));
      }
      ::close(s);
      return resp.substr(resp.find("\r\n\r\n") + 4);
    }
    ::close(s);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return "(no answer)";
}

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    char tmpl[] = "/tmp/kernelet-net.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    static int n = 0;
    config_.bridge = "ktest" + std::to_string(n++);
    config_.pod_cidr = "10.201." + std::to_string(n) + ".0/24";
    config_.run_dir = dir_ + "/run";
    config_.state_dir = dir_ + "/state";
  }
  void TearDown() override {
    if (!dir_.empty()) {
      for (const auto& e : fs::directory_iterator(config_.run_dir, ec_)) {
        // Best effort: a namespace a test already removed is not an error here.
        (void)removeNamespace(e.path());
      }
      fs::remove_all(dir_);
      std::string del = "ip link del " + config_.bridge + " 2>/dev/null";
      (void)std::system(del.c_str());
    }
  }
  Network open() {
    auto n = Network::open(config_);
    EXPECT_TRUE(n) << n.error().message();
    return std::move(*n);
  }
  std::string dir_;
  NetworkConfig config_;
  std::error_code ec_;
};

TEST_F(NetnsTest, TwoPodsPingAndTalkTcpThroughTheBridge) {
  Network net = open();
  auto a = net.setUp("pod-a");
  auto b = net.setUp("pod-b");
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_NE(a->ip, b->ip);
  std::string out;
  EXPECT_EQ(inPod(a->ns_path, {"ping", "-c", "1", "-W", "5", b->ip}, &out), 0) << out;
  EXPECT_EQ(inPod(b->ns_path, {"ping", "-c", "1", "-W", "5", a->ip}, &out), 0) << out;
  pid_t server = spawnInPod(b->ns_path, {helper("kt-http"), "8080", "from-b\n"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int rc = 1;
  for (int i = 0; i < 20 && rc != 0; i++) {
    rc = inPod(a->ns_path, {"wget", "-q", "-O", "-", "http://" + b->ip + ":8080/"}, &out);
  }
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "from-b\n");
  ::kill(server, SIGKILL);
  ::waitpid(server, nullptr, 0);
}

TEST_F(NetnsTest, TheNodeReachesAPodsPortAndThePodHasItsOwnStack) {
  Network net = open();
  auto p = net.setUp("pod-web");
  ASSERT_TRUE(p) << p.error().message();
  pid_t server = spawnInPod(p->ns_path, {helper("kt-http"), "8081", "hello-node\n"});
  EXPECT_EQ(httpGet(p->ip, 8081), "hello-node\n");
  ::kill(server, SIGKILL);
  ::waitpid(server, nullptr, 0);
  std::string out;
  ASSERT_EQ(inPod(p->ns_path, {"ip", "-o", "addr"}, &out), 0);
  EXPECT_NE(out.find("lo    inet 127.0.0.1/8"), std::string::npos) << out;
  EXPECT_NE(out.find("eth0    inet " + p->ip + "/24"), std::string::npos) << out;
  ASSERT_EQ(inPod(p->ns_path, {"ip", "route"}, &out), 0);
  EXPECT_NE(out.find("default via " + p->gateway + " dev eth0"), std::string::npos) << out;
}

TEST_F(NetnsTest, RemovalLeavesNoVethAddressRouteOrNamespace) {
  Network net = open();
  int mounts = countLines("/proc/self/mountinfo");
  auto p = net.setUp("pod-gone");
  ASSERT_TRUE(p);
  EXPECT_TRUE(fs::exists("/sys/class/net/" + p->host_veth));
  ASSERT_TRUE(net.tearDown("pod-gone"));
  EXPECT_FALSE(fs::exists("/sys/class/net/" + p->host_veth));
  EXPECT_FALSE(fs::exists(p->ns_path));
  EXPECT_EQ(countLines("/proc/self/mountinfo"), mounts);
  EXPECT_EQ(countEntries(config_.state_dir + "/" + config_.bridge), 1);  // last_reserved_ip only
  // Idempotent: tearing down again is fine.
  EXPECT_TRUE(net.tearDown("pod-gone"));
}

TEST_F(NetnsTest, IpamSurvivesAnAgentRestart) {
  std::string a_ip;
  {
    Network net = open();
    a_ip = net.setUp("pod-a")->ip;
    ASSERT_TRUE(net.setUp("pod-b"));
  }
  Network again = open();  // the bridge and the files are there already
  auto a = again.setUp("pod-a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ip, a_ip);  // the same network, not a second one
  auto c = again.setUp("pod-c");
  ASSERT_TRUE(c);
  EXPECT_NE(c->ip, a_ip);
  EXPECT_NE(c->ip, again.setUp("pod-b")->ip);
}

TEST_F(NetnsTest, ExhaustedCidrFailsTheNextPodOnly) {
  config_.pod_cidr = "10.202.0.0/29";  // 5 pod addresses
  Network net = open();
  for (int i = 0; i < 5; i++) {
    ASSERT_TRUE(net.setUp("p" + std::to_string(i)));
  }
  int links = countEntries("/sys/class/net");
  auto full = net.setUp("p5");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().message(),
            "set up network of pod p5: allocate pod address `p5`: pod CIDR 10.202.0.0/29 is "
            "exhausted (5 addresses in use)");
  EXPECT_EQ(countEntries("/sys/class/net"), links);
  EXPECT_FALSE(fs::exists(net.nsPath("p5")));
  std::string out;
  EXPECT_EQ(inPod(net.nsPath("p0"), {"ping", "-c", "1", "-W", "5", "10.202.0.1"}, &out), 0) << out;
}

TEST_F(NetnsTest, AFailureHalfWayLeavesNothing) {
  Network net = open();
  // Take the veth name the pod would get: creating the pair fails after the
  // address and the namespace were made.
  std::string veth = Network::hostVethName("pod-x");
  ASSERT_EQ(std::system(("ip link add " + veth + " type dummy").c_str()), 0);
  auto p = net.setUp("pod-x");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("create veth `" + veth + "`"), std::string::npos)
      << p.error().message();
  EXPECT_TRUE(p.error().cleanup.empty()) << p.error().message();
  EXPECT_FALSE(fs::exists(net.nsPath("pod-x")));
  EXPECT_EQ(countEntries(config_.state_dir + "/" + config_.bridge), 1);  // address released
  ASSERT_EQ(std::system(("ip link del " + veth).c_str()), 0);
  EXPECT_TRUE(net.setUp("pod-x")) << "the pod can be set up once the name is free";
}

TEST_F(NetnsTest, TwoHundredPodsLeakNothing) {
  Network net = open();
  int links = countEntries("/sys/class/net");
  int mounts = countLines("/proc/self/mountinfo");
  int fds = countEntries("/proc/self/fd");
  for (int i = 0; i < 200; i++) {
    std::string id = "loop" + std::to_string(i);
    auto p = net.setUp(id);
    ASSERT_TRUE(p) << i << ": " << p.error().message();
    auto r = net.tearDown(id);
    ASSERT_TRUE(r) << i << ": " << r.error().message();
  }
  EXPECT_EQ(countEntries("/sys/class/net"), links);
  EXPECT_EQ(countLines("/proc/self/mountinfo"), mounts);
  EXPECT_EQ(countEntries("/proc/self/fd"), fds);
  EXPECT_EQ(countEntries(config_.run_dir), 0);
  EXPECT_EQ(countEntries(config_.state_dir + "/" + config_.bridge), 1);
}

TEST_F(NetnsTest, ContainersOfAPodShareItsNetwork) {
  Network net = open();
  auto p = net.setUp("pod-shared");
  ASSERT_TRUE(p);
  // Two containers joining the pod's namespace: one serves, one fetches on localhost.
  auto spec = [&](std::vector<std::string> argv) {
    isolation::ContainerSpec s;
    s.argv = std::move(argv);
    s.env = {"PATH=/bin"};
    s.rootfs = KERNELET_FIXTURE_ROOTFS;
    s.namespaces = {{isolation::Namespace::kPid, ""},
                    {isolation::Namespace::kMount, ""},
                    {isolation::Namespace::kNet, p->ns_path}};
    s.mounts = isolation::defaultMounts();
    auto caps = isolation::defaultCapabilities();
    s.capabilities = {caps, caps, caps, {}, {}};
    return s;
  };
  auto server = isolation::start(spec({"kt-http", "9090", "same-pod\n"}));
  ASSERT_TRUE(server) << server.error().message();
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  // The pod's /etc/hosts and resolv.conf, bind-mounted read-only as the agent will.
  auto hosts = writePodFile(dir_ + "/pod-shared", "hosts",
                            hostsFile({.pod_ip = p->ip, .hostname = "shared"}));
  auto resolv = writePodFile(dir_ + "/pod-shared", "resolv.conf",
                             resolvConf({.policy = "None", .nameservers = {"10.96.0.10"}}).value());
  ASSERT_TRUE(hosts && resolv);
  isolation::ContainerSpec client =
      spec({"sh", "-c",
            "grep shared /etc/hosts; cat /etc/resolv.conf; "
            "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://127.0.0.1:9090/ && exit 0; "
            "sleep 0.2; done; exit 1"});
  client.mounts.push_back({"/etc/hosts", "bind", *hosts, {"ro"}});
  client.mounts.push_back({"/etc/resolv.conf", "bind", *resolv, {"ro"}});
  client.stdout_fd = pipefd[1];
  auto c = isolation::start(client);
  ::close(pipefd[1]);
  ASSERT_TRUE(c) << c.error().message();
  std::string out = readAll(pipefd[0]);
  EXPECT_EQ(c->wait()->code, 0);
  EXPECT_EQ(out, p->ip + "\tshared\nnameserver 10.96.0.10\nsame-pod\n");
  ASSERT_TRUE(server->signal(SIGKILL));
  ASSERT_TRUE(server->wait());
}

}  // namespace
}  // namespace kernelet::netns
