// Exec and port-forward (issue #18) in one run of the test VM
// (bench/run-streams): `kernelet run --kubeconfig` against the test API
// server, real kubectl, each stream against a plain loopback TCP peer in the
// same VM doing the same work:
//   1. 100 MiB through `kubectl exec -i POD -- cat`, checksummed on the way
//      out, against the same file through socat to a socat running `cat` on
//      loopback (target: at least half its speed);
//   2. 100 MiB through `kubectl port-forward` (a file the pod's busybox nc
//      sends to whoever connects), checksummed, against the same file sent by
//      socat on the VM's loopback (target: at least half);
//   3. `kubectl exec POD -- true` latency against `crun exec` into a crun
//      container of the same image, beside `kubectl get --raw /healthz`
//      (kubectl's own start and one API round trip: the floor of any kubectl).
// Both framings where kubectl has a choice: its default (WebSocket first) and
// SPDY only (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, ..._PORT_FORWARD_...).
// Each copy is also taken apart into its hops, so a slow one is found:
//   - the TLS floor: the same copy through socat with TLS, once end to end
//     and once through a socat in the middle that decrypts and encrypts
//     again (kubectl -> API server -> agent is two TLS legs; under qemu's TCG
//     AES is slow, so this bounds what any kubelet could do here);
//   - the agent alone: streams_direct.py straight to the agent's :10250 with
//     the API server's kubelet client certificate (WebSocket, no relay).
//
//   streams_bench --kernelet PATH --fixtures DIR [-n N] [--mib M]
//   (-n 0: no latency samples; --mib: the copies' size, 100 by default)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "support/api_server.h"

namespace {

using kernelet::bench::median;
using kernelet::bench::runCommand;
using kernelet::bench::slurp;
using kernelet::bench::writeBundle;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kBase = "/tmp/streams-bench";
const std::string kSpdyOnly =
    "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false KUBECTL_PORT_FORWARD_WEBSOCKETS=false ";
long kSize = 100L << 20;  // --mib

// `sh -c CMD`, output to `out`; the exit status.
int sh(const std::string& cmd, const std::string& out = "/dev/null") {
  return runCommand({"sh", "-c", cmd}, out);
}

double secondsOf(const std::function<void()>& fn) {
  auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A background `sh -c CMD` in a process group of its own, output to `log`.
pid_t background(const std::string& cmd, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    FILE* f = std::fopen(log.c_str(), "w");
    if (f != nullptr) {
      ::dup2(fileno(f), 1);
      ::dup2(fileno(f), 2);
    }
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

void stop(pid_t pid) {
  if (pid > 0) {
    ::kill(-pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
}

// Polls `log` for `pattern`'s first group (e.g. a port) for up to 120 s.
std::string waitFor(const std::string& log, const std::regex& pattern) {
  auto deadline = Clock::now() + std::chrono::seconds(120);
  std::smatch m;
  while (Clock::now() < deadline) {
    std::string text = slurp(log);
    if (std::regex_search(text, m, pattern)) {
      return m[1].str();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

// Waits up to 30 s for a listener on 127.0.0.1:`port` (a peer just started).
bool listening(int port) {
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (fd >= 0) {
      ::close(fd);
    }
    if (ok) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// The first 32 characters of `file` (md5sum's digest: the cheapest sum both
// sides can run, so the copies and not the checksum are measured under TCG).
std::string digest(const std::string& file) { return slurp(file).substr(0, 32); }

// The processes whose CPU time each copy reports: under TCG every hop is
// CPU-bound, and CPU seconds are what other load on the machine changes least.
pid_t g_agent = -1;
pid_t g_relay = -1;  // the API server (its relay threads)

// utime + stime of `pid` (all its threads) in seconds; 0 when it is gone.
double cpuSeconds(pid_t pid) {
  if (pid <= 0) {
    return 0;
  }
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) {
    return 0;
  }
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; i++) {  // fields 14 and 15: utime, stime
    if (i >= 14) {
      ticks += std::stod(field);
    }
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The API server's pid: the python3 running apiserver.py (the only one).
pid_t findRelay() {
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    if (slurp(e.path().string() + "/cmdline").find("apiserver.py") != std::string::npos) {
      return std::stoi(name);
    }
  }
  return -1;
}

struct Copy {
  double seconds = 0;
  bool intact = false;
  double agent_cpu = 0, relay_cpu = 0;  // seconds of CPU during the copy
};

// `pipeline` (ending in md5sum) timed; intact when its digest is `want`.
Copy timedCopy(const std::string& pipeline, const std::string& want) {
  std::string out = kBase + "/copy.sum";
  Copy c;
  int rc = 0;
  double agent0 = cpuSeconds(g_agent), relay0 = cpuSeconds(g_relay);
  c.seconds = secondsOf([&] { rc = sh(pipeline, out); });
  c.agent_cpu = cpuSeconds(g_agent) - agent0;
  c.relay_cpu = cpuSeconds(g_relay) - relay0;
  c.intact = rc == 0 && digest(out) == want;
  if (!c.intact) {
    std::cerr << "  copy failed (" << rc << "): " << pipeline << "\n" << slurp(out) << "\n";
    // What the agent said of its streams meanwhile (errors, resets).
    runCommand(
        {"sh", "-c", "grep -iE 'exec|stream|spdy|forward' " + kBase + "/agent.log | tail -n 8"});
  }
  return c;
}

void printCopy(const std::string& name, const Copy& c, const Copy& peer) {
  double mib = static_cast<double>(kSize) / (1 << 20);
  double mibs = mib / c.seconds;
  double peer_mibs = mib / peer.seconds;
  bool both = c.intact && peer.intact;  // a ratio to a broken peer means nothing
  std::printf("  %-34s %8.1f MiB/s %s  %5.2fx the loopback copy (%.1f MiB/s%s)", name.c_str(),
              c.intact ? mibs : 0.0, c.intact ? "intact " : "BROKEN ", both ? mibs / peer_mibs : 0,
              peer.intact ? peer_mibs : 0.0, peer.intact ? "" : ", BROKEN");
  // CPU per MiB moved: the agent's and the relay's share of the hop.
  if (c.agent_cpu + c.relay_cpu > 0.05) {
    std::printf("  CPU ms/MiB: agent %.0f, relay %.0f", 1000 * c.agent_cpu / mib,
                1000 * c.relay_cpu / mib);
  }
  std::printf("\n");
}

// The TLS floor of a copy: `server` (a socat address: the echo or the sender)
// behind TLS on `port`, and a socat relaying TLS to TLS on `port` + 1; the
// client goes through one TLS leg, then two (kubectl -> API server -> agent
// is two). All with TCP_NODELAY, as Go's sockets; and once one leg with
// Nagle on (socat's default, `port` + 2), to show what it costs: OpenSSL
// sends each 16 KiB record with a send() of its own, below loopback's MSS.
// `client` is the copy's pipeline with ADDR where the socat address goes.
void tlsFloor(const std::string& server, int port, const std::string& client,
              const std::string& want, const Copy& peer) {
  std::string dir = kBase + "/tls";
  std::filesystem::create_directories(dir);
  if (sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
         "-subj /CN=localhost -keyout " +
             dir + "/tls.key -out " + dir + "/tls.crt",
         dir + "/openssl.log") != 0) {
    std::cerr << "  openssl req failed: " << slurp(dir + "/openssl.log") << "\n";
    return;
  }
  std::string tls = "cert=" + dir + "/tls.crt,key=" + dir + "/tls.key,verify=0";
  auto listen = [&](int p, const std::string& opts) {
    return "socat -b 65536 OPENSSL-LISTEN:" + std::to_string(p) +
           ",bind=127.0.0.1,reuseaddr,fork," + tls + opts + " ";
  };
  std::string to_end = "OPENSSL:127.0.0.1:" + std::to_string(port) + ",verify=0,nodelay";
  std::vector<pid_t> peers{background(listen(port, ",nodelay") + server, dir + "/end.log"),
                           background(listen(port + 1, ",nodelay") + to_end, dir + "/mid.log"),
                           background(listen(port + 2, "") + server, dir + "/nagle.log")};
  if (!listening(port) || !listening(port + 1) || !listening(port + 2)) {
    std::cerr << "  the TLS peers did not start: " << slurp(dir + "/end.log")
              << slurp(dir + "/mid.log") << slurp(dir + "/nagle.log") << "\n";
  }
  struct Row {
    const char* name;
    int port;
    const char* opts;
  };
  for (const Row& r : {Row{"  TLS floor: one leg, Nagle on", port + 2, ""},
                       Row{"  TLS floor: one leg", port, ",nodelay"},
                       Row{"  TLS floor: two legs", port + 1, ",nodelay"}}) {
    std::string pipeline = client;
    std::string addr = "OPENSSL:127.0.0.1:" + std::to_string(r.port) + ",verify=0" + r.opts;
    pipeline.replace(pipeline.find("ADDR"), 4, addr);
    printCopy(r.name, timedCopy(pipeline, want), peer);
  }
  for (pid_t p : peers) {
    stop(p);
  }
}

// The agent alone (streams_direct.py): `args` after the script's mode.
void direct(const std::string& name, const std::string& args, const std::string& want,
            const Copy& peer) {
  printCopy(
      name,
      timedCopy(std::string("python3 ") + KERNELET_STREAMS_DIRECT + " " + args + " | md5sum", want),
      peer);
}

bool podsRunning(const kernelet::testing::ApiServer& server) {
  auto deadline = Clock::now() + std::chrono::seconds(300);
  while (Clock::now() < deadline) {
    std::string out = server.kubectl("get pods -o jsonpath={.items[*].status.phase}");
    if (out == "Running Running") {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string kernelet, fixtures;
  int n = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--kernelet") {
      kernelet = argv[i + 1];
    } else if (a == "--fixtures") {
      fixtures = argv[i + 1];
    } else if (a == "-n") {
      n = std::stoi(argv[i + 1]);
    } else if (a == "--mib") {
      kSize = std::stol(argv[i + 1]) << 20;
    }
  }
  // Rows as they come: the VM's console is a pipe. (Failing leaves them buffered.)
  (void)std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (kernelet.empty() || fixtures.empty()) {
    std::cerr << "usage: streams_bench --kernelet PATH --fixtures DIR [-n N]\n";
    return 2;
  }
  fs::remove_all(kBase);
  fs::create_directories(kBase + "/manifests");
  fs::create_directories(kBase + "/www");
  auto server = kernelet::testing::ApiServer::start(kBase + "/api", {});
  if (!server) {
    std::cerr << "api server: " << server.error().message() << "\n";
    return 1;
  }
  std::string root = kBase + "/root";
  if (runCommand({kernelet, "images", "--root-dir", root, "import", fixtures + "/oci/busybox"},
                 "/dev/null") != 0) {
    std::cerr << "image import failed\n";
    return 1;
  }
  pid_t agent = ::fork();
  if (agent == 0) {
    std::string log = kBase + "/agent.log";
    FILE* f = std::fopen(log.c_str(), "w");
    ::dup2(fileno(f), 1);
    ::dup2(fileno(f), 2);
    ::execl(kernelet.c_str(), kernelet.c_str(), "run", "--kubeconfig", server->kubeconfig().c_str(),
            "--pod-manifest-path", (kBase + "/manifests").c_str(), "--root-dir", root.c_str(),
            "--pod-log-dir", (kBase + "/logs").c_str(), "--run-dir", "/run/streams-bench",
            "--cgroup-root", "/streams-bench", "--hostname-override", "node1", "--node-ip",
            "127.0.0.1", "--port=0", "--client-ca-file", server->caFile().c_str(),
            "--stop-pods-on-exit", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // The file both copies carry, in the pod (an emptyDir filled at start) and here.
  std::string file = kBase + "/www/big";
  sh("head -c " + std::to_string(kSize) + " /dev/urandom > " + file + " && md5sum < " + file,
     kBase + "/big.sum");
  std::string want = digest(kBase + "/big.sum");
  std::ofstream(kBase + "/pods.yaml")
      << "apiVersion: v1\nkind: Pod\nmetadata: {name: shell}\nspec:\n  nodeName: node1\n"
         "  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n"
         "    image: fixtures.kernelet.test/busybox:latest\n    imagePullPolicy: Never\n"
         "    command: [sh, -c, 'exec sleep 3600']\n---\n"
         "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  nodeName: node1\n"
         "  terminationGracePeriodSeconds: 1\n  volumes: [{name: www, emptyDir: {}}]\n"
         "  containers:\n  - name: app\n    image: fixtures.kernelet.test/busybox:latest\n"
         "    imagePullPolicy: Never\n    volumeMounts: [{name: www, mountPath: /www}]\n"
         "    command: [sh, -c, 'head -c "
      << kSize
      << " /dev/urandom > /www/big; md5sum /www/big; exec nc -ll -p 8080 -e cat /www/big']\n";
  std::cout << server->kubectl("apply -f " + kBase + "/pods.yaml");
  if (!podsRunning(*server)) {
    std::cerr << "pods not running\n" << slurp(kBase + "/agent.log");
    ::kill(agent, SIGTERM);
    ::waitpid(agent, nullptr, 0);
    return 1;
  }
  std::string kubectl = "KUBECONFIG=" + server->kubeconfig() + " ";
  g_agent = agent;
  g_relay = findRelay();
  // The pod's file (its own random bytes): its digest, from the pod's log.
  std::string pod_want;
  for (auto deadline = Clock::now() + std::chrono::seconds(300);
       pod_want.empty() && Clock::now() < deadline;
       std::this_thread::sleep_for(std::chrono::milliseconds(500))) {
    std::smatch m;
    std::string log = server->kubectl("logs web");
    if (std::regex_search(log, m, std::regex("([0-9a-f]{32})  /www/big"))) {
      pod_want = m[1].str();
    }
  }
  if (pod_want.empty()) {
    std::cerr << "no digest in the web pod's log\n";
  }
  std::printf("%ld MiB through exec -i cat (checksummed):\n", kSize >> 20);
  pid_t echo = background("socat -b 65536 TCP-LISTEN:7001,bind=127.0.0.1,reuseaddr,fork EXEC:cat",
                          kBase + "/socat.log");
  if (!listening(7001)) {
    std::cerr << "  the loopback echo did not start: " << slurp(kBase + "/socat.log") << "\n";
  }
  Copy loop = timedCopy("socat -b 65536 -t 60 - TCP:127.0.0.1:7001 < " + file + " | md5sum", want);
  stop(echo);
  tlsFloor("EXEC:cat", 7003, "socat -b 65536 -t 60 - ADDR < " + file + " | md5sum", want, loop);
  std::string agent_port =
      server->kubectl("get node node1 -o jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}");
  std::string creds = "127.0.0.1 " + agent_port + " " + server->kubeletClientCert() + " " +
                      server->kubeletClientKey() + " default ";
  direct("  agent alone (WebSocket v5)", "exec " + creds + "shell app " + file, want, loop);
  for (const auto& [name, env] : {std::pair<std::string, std::string>{"kubectl exec (default)", ""},
                                  {"kubectl exec (SPDY)", kSpdyOnly}}) {
    std::string pipeline = kubectl;
    pipeline += env;
    pipeline += "timeout 600 kubectl exec -i shell -- cat < " + file + " | md5sum";
    Copy c = timedCopy(pipeline, want);
    printCopy(name, c, loop);
  }

  std::printf("%ld MiB through port-forward (checksummed):\n", kSize >> 20);
  pid_t sender = background(
      "socat -b 65536 TCP-LISTEN:7002,bind=127.0.0.1,reuseaddr,fork SYSTEM:'cat " + file + "'",
      kBase + "/sender.log");
  if (!listening(7002)) {
    std::cerr << "  the loopback sender did not start: " << slurp(kBase + "/sender.log") << "\n";
  }
  Copy plain = timedCopy("socat -b 65536 -u TCP:127.0.0.1:7002 - | md5sum", want);
  stop(sender);
  tlsFloor("SYSTEM:'cat " + file + "'", 7010, "socat -b 65536 -u ADDR - | md5sum", want, plain);
  direct("  agent alone (WebSocket v4)",
         "portforward " + creds + "web 8080 " + std::to_string(kSize), pod_want, plain);
  for (const auto& [name, env] :
       {std::pair<std::string, std::string>{"kubectl port-forward (default)", ""},
        {"kubectl port-forward (SPDY)", kSpdyOnly}}) {
    // A log of its own per run: the child truncates it only once it runs, so
    // a shared one could still show the last run's (closed) port.
    std::string log = kBase + (env.empty() ? "/pf-default.log" : "/pf-spdy.log");
    std::string cmd = "exec env " + kubectl;
    cmd += env;
    cmd += "kubectl port-forward pod/web :8080";
    pid_t pf = background(cmd, log);
    std::string port = waitFor(log, std::regex(R"(Forwarding from 127\.0\.0\.1:(\d+))"));
    Copy c;
    if (port.empty()) {
      std::cerr << "  no port-forward: " << slurp(log) << "\n";
    } else {
      c = timedCopy("socat -b 65536 -u TCP:127.0.0.1:" + port + " - | md5sum", pod_want);
    }
    stop(pf);
    printCopy(name, c, plain);
  }

  if (n <= 0) {
    ::kill(agent, SIGTERM);
    ::waitpid(agent, nullptr, 0);
    fs::remove_all(kBase);
    return 0;
  }
  std::printf("exec -- true latency (median of %d):\n", n);
  std::string bundle = kBase + "/bundle";
  writeBundle(bundle, fs::absolute(fixtures + "/rootfs/busybox"), "\"sleep\", \"3600\"");
  std::string crun_root = kBase + "/crun";
  bool crun_up = runCommand({"crun", "--root", crun_root, "run", "-d", "-b", bundle, "peer"},
                            kBase + "/crun.log") == 0;
  std::vector<double> crun_ms, exec_ms, spdy_ms, floor_ms;
  for (int i = 0; i < n; i++) {
    if (crun_up) {
      crun_ms.push_back(1000 * secondsOf([&] {
                          runCommand({"crun", "--root", crun_root, "exec", "peer", "true"});
                        }));
    }
    exec_ms.push_back(1000 * secondsOf([&] { sh(kubectl + "kubectl exec shell -- true"); }));
    spdy_ms.push_back(1000 *
                      secondsOf([&] { sh(kubectl + kSpdyOnly + "kubectl exec shell -- true"); }));
    floor_ms.push_back(1000 * secondsOf([&] { sh(kubectl + "kubectl get --raw /healthz"); }));
  }
  if (crun_up) {
    runCommand({"crun", "--root", crun_root, "delete", "-f", "peer"}, "/dev/null");
  } else {
    std::cerr << "  crun run failed: " << slurp(kBase + "/crun.log") << "\n";
  }
  double crun = median(crun_ms);
  std::printf("  %-34s %8.1f ms\n", "crun exec", crun);
  std::printf("  %-34s %8.1f ms  %6.1fx crun exec\n", "kubectl exec (default)", median(exec_ms),
              crun > 0 ? median(exec_ms) / crun : 0);
  std::printf("  %-34s %8.1f ms  %6.1fx crun exec\n", "kubectl exec (SPDY)", median(spdy_ms),
              crun > 0 ? median(spdy_ms) / crun : 0);
  std::printf("  %-34s %8.1f ms  (kubectl's start and one API round trip)\n",
              "kubectl get --raw /healthz", median(floor_ms));
  ::kill(agent, SIGTERM);  // --stop-pods-on-exit: the pods go with it
  ::waitpid(agent, nullptr, 0);
  fs::remove_all(kBase);
  return 0;
}
