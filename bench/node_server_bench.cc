// The node's own server (:10250) in one run of the test VM
// (bench/run-node-server), with a standalone agent serving clients whose
// certificate a bench CA signed:
//   1. pod start latency (manifest -> "Container started", the agent's klog
//      time) for N pods one by one, alternately while a scraper fetches
//      /stats/summary every second and while nothing scrapes: the two medians
//      and their ratio (target: within noise, ~1.0x).
//   2. /stats/summary with M pods running: the median of 20 requests on one
//      kept-alive connection (curl's time_total), against `cat` of the cgroup
//      files a summary reads (target < 50 ms).
//   3. /containerLogs of a 100 MiB log through HTTPS to /dev/null against `cat`
//      of the same file to /dev/null (target: over half cat's speed).
//
//   node_server_bench --kernelet PATH --fixtures DIR [-n N] [--many M]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

namespace {

using kernelet::bench::median;
using kernelet::bench::runCommand;
using kernelet::bench::slurp;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kBase = "/tmp/node-server-bench";
const std::string kPort = "10250";
const std::string kTlsPeerPort = "10251";

std::string podYaml(const std::string& name, const std::string& command) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
         "}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: "
         "fixtures.kernelet.test/busybox:latest\n    imagePullPolicy: Never\n    command: " +
         command + "\n";
}

// curl with the bench's client certificate; `write_out` goes to the returned
// string (one line per URL), the bodies to /dev/null.
std::string curl(const std::vector<std::string>& urls, const std::string& write_out) {
  std::vector<std::string> argv = {
      "curl", "-sk", "--cert", kBase + "/client.crt", "--key", kBase + "/client.key"};
  for (const auto& u : urls) {
    argv.insert(argv.end(),
                {"-o", "/dev/null", "-w", write_out + "\\n", "https://127.0.0.1:" + kPort + u});
  }
  std::string out = kBase + "/curl.out";
  if (runCommand(argv, out) != 0) {
    return "";
  }
  return slurp(out);
}

std::vector<double> numbers(const std::string& text) {
  std::vector<double> v;
  std::istringstream in(text);
  for (double d = 0; in >> d;) {
    v.push_back(d);
  }
  return v;
}

int countRunning(const std::string& root) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root + "/pods", ec)) {
    std::string s = slurp(e.path().string() + "/status.json");
    n += s.find("\"phase\": \"Running\"") != std::string::npos ? 1 : 0;
  }
  return n;
}

double secondsOf(const std::function<void()>& fn) {
  auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool makeCertificates() {
  auto ok = [](const std::vector<std::string>& argv) { return runCommand(argv, "/dev/null") == 0; };
  std::string ec = "ec:" + kBase + "/ec.pem";
  return ok({"openssl", "ecparam", "-name", "prime256v1", "-out", kBase + "/ec.pem"}) &&
         ok({"openssl", "req", "-x509", "-newkey", ec, "-nodes", "-keyout", kBase + "/ca.key",
             "-out", kBase + "/ca.crt", "-subj", "/CN=bench-ca", "-days", "2"}) &&
         ok({"openssl", "req", "-newkey", ec, "-nodes", "-keyout", kBase + "/client.key", "-out",
             kBase + "/client.csr", "-subj", "/O=system:masters/CN=bench"}) &&
         ok({"openssl", "x509", "-req", "-in", kBase + "/client.csr", "-CA", kBase + "/ca.crt",
             "-CAkey", kBase + "/ca.key", "-CAcreateserial", "-out", kBase + "/client.crt", "-days",
             "2"});
}

}  // namespace

int main(int argc, char** argv) {
  std::string kernelet, fixtures;
  int n = 20, many = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--kernelet") kernelet = argv[i + 1];
    if (a == "--fixtures") fixtures = argv[i + 1];
    if (a == "-n") n = std::stoi(argv[i + 1]);
    if (a == "--many") many = std::stoi(argv[i + 1]);
  }
  if (kernelet.empty() || fixtures.empty()) {
    std::cerr << "usage: node_server_bench --kernelet PATH --fixtures DIR [-n N] [--many M]\n";
    return 2;
  }
  std::string root = kBase + "/root", manifests = kBase + "/manifests", logs = kBase + "/logs";
  std::string log = kBase + "/agent.log";
  fs::remove_all(kBase);
  fs::create_directories(manifests);
  if (!makeCertificates()) {
    std::cerr << "openssl failed\n";
    return 1;
  }
  // Big enough that the 100 MiB log is one file, as `cat` reads it.
  std::ofstream(kBase + "/config.yaml") << "apiVersion: kubelet.config.k8s.io/v1beta1\n"
                                           "kind: KubeletConfiguration\n"
                                           "containerLogMaxSize: 512Mi\n";
  if (runCommand({kernelet, "images", "--root-dir", root, "import", fixtures + "/oci/busybox"},
                 "/dev/null") != 0) {
    std::cerr << "image import failed\n";
    return 1;
  }
  pid_t agent = ::fork();
  if (agent == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    ::dup2(fileno(f), 2);
    ::execl(kernelet.c_str(), kernelet.c_str(), "run", "--stop-pods-on-exit", "--config",
            (kBase + "/config.yaml").c_str(), "--pod-manifest-path", manifests.c_str(),
            "--root-dir", root.c_str(), "--pod-log-dir", logs.c_str(), "--hostname-override",
            "bench", "--max-pods", "250", "--client-ca-file", (kBase + "/ca.crt").c_str(),
            "--address", "127.0.0.1", "--port", kPort.c_str(), "-v", "2", nullptr);
    ::_exit(127);
  }
  auto fail = [&](const std::string& what) {
    std::cerr << what << "\n" << slurp(log);
    ::kill(agent, SIGKILL);
    ::waitpid(agent, nullptr, 0);
    return 1;
  };
  for (auto deadline = Clock::now() + std::chrono::seconds(30);
       curl({"/healthz"}, "%{http_code}").find("200") == std::string::npos;) {
    if (Clock::now() > deadline) {
      return fail("the server did not answer /healthz");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // 1. Pod start, with and without a scraper.
  std::atomic<bool> scrape{false}, done{false};
  int scrapes = 0;
  std::thread scraper([&] {
    while (!done) {
      auto next = Clock::now() + std::chrono::seconds(1);
      if (scrape) {
        (void)curl({"/stats/summary"}, "%{http_code}");  // the load, not a figure
        scrapes++;
      }
      std::this_thread::sleep_until(next);
    }
  });
  kernelet::bench::AgentLog agent_log(log);
  std::vector<double> with, without;
  for (int i = 0; i < n; i++) {
    bool on = i % 2 == 0;
    scrape = on;
    std::string name = "seq" + std::to_string(i);
    std::string tmp = kBase + "/" + name + ".yaml";
    std::ofstream(tmp) << podYaml(name, "[kt-sleep, '600']");
    double written = kernelet::bench::timeOfDay();
    fs::rename(tmp, manifests + "/" + name + ".yaml");
    double started = -1;
    for (auto deadline = Clock::now() + std::chrono::seconds(60);
         started < 0 && Clock::now() < deadline;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      started = agent_log.startedAt(name + "-bench");
    }
    if (started < 0) {
      done = true;
      scraper.join();
      return fail("pod " + name + " did not start");
    }
    (on ? with : without).push_back((started - written) * 1000);
    // A second between pods: a start takes a few hundred ms, so without it
    // few starts would meet a scrape at all.
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  scrape = false;

  // 2. /stats/summary with `many` pods.
  for (int i = n; i < many; i++) {
    std::string name = "seq" + std::to_string(i);
    std::ofstream(kBase + "/" + name + ".yaml") << podYaml(name, "[kt-sleep, '600']");
    fs::rename(kBase + "/" + name + ".yaml", manifests + "/" + name + ".yaml");
  }
  for (auto deadline = Clock::now() + std::chrono::seconds(600);
       countRunning(root) < many && Clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  int running = countRunning(root);
  // Past one housekeeping (10 s): what a scraper of a settled node waits.
  std::this_thread::sleep_for(std::chrono::seconds(12));
  std::vector<double> summary_ms;
  std::vector<std::string> urls(20, "/stats/summary");
  for (double s : numbers(curl(urls, "%{time_total}"))) {
    summary_ms.push_back(s * 1000);
  }
  std::string one = kBase + "/summary.json";
  runCommand({"curl", "-sk", "--cert", kBase + "/client.crt", "--key", kBase + "/client.key", "-o",
              one, "https://127.0.0.1:" + kPort + "/stats/summary"});
  size_t summary_bytes = slurp(one).size();
  std::vector<std::string> files = {"cat"};
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator("/sys/fs/cgroup", ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::string p = it->path().string();
    if (p.find("kubepods") == std::string::npos) {
      continue;
    }
    for (const char* f :
         {"/cpu.stat", "/memory.current", "/memory.stat", "/io.stat", "/pids.current"}) {
      if (p.ends_with(f)) {
        files.push_back(p);
      }
    }
  }
  std::vector<double> cat_ms;
  for (int i = 0; i < 5; i++) {
    cat_ms.push_back(secondsOf([&] { runCommand(files, "/dev/null"); }) * 1000);
  }

  // 3. A 100 MiB log.
  // The many pods go (file by file: the agent watches the directory itself).
  for (const auto& e : fs::directory_iterator(manifests, ec)) {
    fs::remove(e.path(), ec);
  }
  std::ofstream(manifests + "/logger.yaml") << podYaml(
      "logger",
      "[sh, -c, 'yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef012 | "
      "head -c 104857600; sleep 600']");
  std::string log_file;
  uintmax_t last = 0;
  for (auto deadline = Clock::now() + std::chrono::seconds(300); Clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    for (const auto& d : fs::directory_iterator(logs, ec)) {
      if (d.path().filename().string().starts_with("default_logger-bench_")) {
        log_file = d.path().string() + "/app/0.log";
      }
    }
    uintmax_t size = log_file.empty() ? 0 : fs::file_size(log_file, ec);
    if (size > (100u << 20) && size == last) {
      break;
    }
    last = size;
  }
  if (last <= (100u << 20)) {
    done = true;
    scraper.join();
    return fail("the logger's log did not reach 100 MiB: " + log_file);
  }
  std::vector<double> http_s, cat_s, tls_s;
  double delivered = 0;
  // The peer with the same TLS: `openssl s_server -WWW` sending the same file
  // to the same curl, so what TLS itself costs under emulation is known.
  // (Everything the child needs is made before the fork: the scraper thread
  // runs, so the child may not allocate.)
  std::string peer_dir = fs::path(log_file).parent_path().string();
  std::string crt = kBase + "/client.crt", key = kBase + "/client.key";
  std::string accept = "127.0.0.1:" + kTlsPeerPort;
  pid_t tls_peer = ::fork();
  if (tls_peer == 0) {
    if (::chdir(peer_dir.c_str()) == 0) {
      ::execlp("openssl", "openssl", "s_server", "-quiet", "-WWW", "-accept", accept.c_str(),
               "-cert", crt.c_str(), "-key", key.c_str(), nullptr);
    }
    ::_exit(127);
  }
  std::string peer_url = "https://" + accept + "/" + fs::path(log_file).filename().string();
  for (int i = 0; i < 3; i++) {
    auto r = numbers(
        curl({"/containerLogs/default/logger-bench/app"}, "%{time_total} %{size_download}"));
    if (r.size() != 2) {
      done = true;
      scraper.join();
      return fail("/containerLogs failed");
    }
    http_s.push_back(r[0]);
    delivered = r[1];
    cat_s.push_back(secondsOf([&] { runCommand({"cat", log_file}, "/dev/null"); }));
    for (int tries = 0; tries < 50; tries++) {  // the peer may still be starting
      std::string out = kBase + "/peer.out";
      if (runCommand(
              {"curl", "-sk", "-o", "/dev/null", "-w", "%{time_total} %{size_download}", peer_url},
              out) == 0) {
        auto t = numbers(slurp(out));
        if (t.size() == 2 && t[1] > 0) {
          tls_s.push_back(t[0]);
          break;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ::kill(tls_peer, SIGTERM);
  ::waitpid(tls_peer, nullptr, 0);
  done = true;
  scraper.join();
  ::kill(agent, SIGTERM);
  ::waitpid(agent, nullptr, 0);

  double w = median(with), wo = median(without);
  std::printf("pod start (manifest -> container running), %d pods one by one:\n", n);
  std::printf("  while /stats/summary is scraped every second  median %7.1f ms (%d scrapes)\n", w,
              scrapes);
  std::printf("  while nothing scrapes                         median %7.1f ms\n", wo);
  std::printf("  ratio scraped/unscraped: %.2fx (target: noise, ~1.0x)\n", w / wo);
  double s = median(summary_ms), c = median(cat_ms);
  std::printf("/stats/summary with %d pods Running (%zu bytes), 20 requests on one connection:\n",
              running, summary_bytes);
  std::printf("  median %.1f ms, max %.1f ms (target < 50 ms)\n", s,
              *std::max_element(summary_ms.begin(), summary_ms.end()));
  std::printf("  peer: cat of the %zu cgroup files it reads: median %.1f ms; ratio %.2fx\n",
              files.size() - 1, c, s / c);
  double file_mib = static_cast<double>(last) / (1 << 20), out_mib = delivered / (1 << 20);
  double h = median(http_s), k = median(cat_s);
  std::printf("/containerLogs of a %.1f MiB CRI log (%.1f MiB of payload delivered):\n", file_mib,
              out_mib);
  std::printf("  HTTPS (curl -> /dev/null) median %.2f s = %.0f MiB/s of file\n", h, file_mib / h);
  std::printf("  cat of the file -> /dev/null  median %.2f s = %.0f MiB/s\n", k, file_mib / k);
  std::printf("  speed ratio server/cat: %.2fx (target > 0.5x)\n", k / h);
  if (!tls_s.empty()) {
    double t = median(tls_s);
    std::printf(
        "  peer with the same TLS: openssl s_server -WWW of the file -> curl  median %.2f s = "
        "%.0f MiB/s; ratio server/TLS peer: %.2fx\n",
        t, file_mib / t, t / h);
  } else {
    std::printf("  peer with the same TLS: openssl s_server did not answer\n");
  }
  // The ceiling TLS itself sets here: one core encrypting 64 KiB records
  // (the server's side; curl decrypts as much on the other).
  runCommand({"openssl", "speed", "-seconds", "1", "-bytes", "65536", "-evp", "aes-256-gcm"},
             kBase + "/speed.out");
  std::string speed = slurp(kBase + "/speed.out");
  size_t k_at = speed.rfind('k');
  size_t sp = speed.rfind(' ', k_at);
  if (k_at != std::string::npos && sp != std::string::npos) {
    double mb = std::stod(speed.substr(sp + 1, k_at - sp - 1)) / 1000;
    std::printf(
        "  peer for the TLS share: openssl speed aes-256-gcm, 64 KiB: %.0f MB/s on one core\n", mb);
  }
  return 0;
}
