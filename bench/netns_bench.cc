// Pod network set-up and tear-down: kernelet's netns (libnl, in-process)
// against the same steps done with iproute2 commands, in one VM run,
// interleaved. Prints medians and the ratio. Run: bench/run-netns [N].
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "netns/netns.h"

namespace {

using Clock = std::chrono::steady_clock;

int sh(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

// What a CNI bridge plugin does, one iproute2 command per step.
int iproute2Pod(int i, bool up) {
  std::string ns = "ipr" + std::to_string(i);
  std::string veth = "vipr" + std::to_string(i);
  std::string ip = "10.211.0." + std::to_string(2 + i % 250) + "/24";
  if (!up) {
    return sh("ip link del " + veth + " && ip netns del " + ns);
  }
  return sh("ip netns add " + ns + " && ip -n " + ns + " link set lo up && ip link add " + veth +
            " mtu 1500 master bench-br1 up type veth peer name eth0 netns " + ns + " && ip -n " +
            ns + " addr add " + ip + " dev eth0 && ip -n " + ns + " link set eth0 up && ip -n " +
            ns + " route add default via 10.211.0.1");
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 100;
  char tmpl[] = "/tmp/kernelet-netbench.XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  kernelet::netns::NetworkConfig config{.bridge = "bench-br0",
                                        .pod_cidr = "10.210.0.0/16",
                                        .run_dir = dir + "/run",
                                        .state_dir = dir + "/state"};
  auto net = kernelet::netns::Network::open(config);
  if (!net) {
    std::cerr << net.error().message() << "\n";
    return 1;
  }
  if (sh("ip link add bench-br1 type bridge && ip addr add 10.211.0.1/24 dev bench-br1 && "
         "ip link set bench-br1 up") != 0) {
    return 1;
  }
  std::vector<double> ours, theirs;
  for (int i = 0; i < n; i++) {
    std::string id = "bench" + std::to_string(i);
    auto t0 = Clock::now();
    auto p = net->setUp(id);
    auto r = p ? net->tearDown(id) : kernelet::Result<void>(std::unexpected(p.error()));
    auto t1 = Clock::now();
    if (!r) {
      std::cerr << r.error().message() << "\n";
      return 1;
    }
    if (iproute2Pod(i, true) != 0 || iproute2Pod(i, false) != 0) {
      std::cerr << "iproute2 steps failed at " << i << "\n";
      return 1;
    }
    auto t2 = Clock::now();
    ours.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    theirs.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  sh("ip link del bench-br1; ip link del bench-br0");
  std::filesystem::remove_all(dir);
  double a = median(ours), b = median(theirs);
  std::printf("pod network set-up + tear-down, %d rounds, interleaved (median):\n", n);
  std::printf("  %-24s %8.2f ms   %5.2fx iproute2\n", "kernelet netns (libnl)", a, a / b);
  std::printf("  %-24s %8.2f ms   %5.2fx iproute2\n", "iproute2 commands", b, 1.0);
  return 0;
}
