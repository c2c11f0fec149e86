#include "support/e2e_cluster.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>

#include "support/process_util.h"
#include "sys/fileio.h"

namespace kernelet::testing {

namespace fs = std::filesystem;
using namespace std::chrono;

std::string podYaml(const std::string& name, const std::string& command, const std::string& extra) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
         "}\nspec:\n  nodeName: node1\n  terminationGracePeriodSeconds: 5\n" + extra +
         "  containers:\n  - name: app\n    image: " + kFixtureImage +
         "\n    imagePullPolicy: Never\n    command: [sh, -c, '" + command + "']\n";
}

std::function<bool(const std::string&)> has(const std::string& needle) {
  return [needle](const std::string& s) { return s.find(needle) != std::string::npos; };
}

std::string missingTool(const std::vector<std::string>& tools) {
  for (const auto& t : tools) {
    if (::access(t.c_str(), X_OK) != 0) {
      return t;
    }
  }
  return "";
}

E2eCluster::E2eCluster(Options options) : options_(std::move(options)) {
  if (options_.binary.empty()) {
    options_.binary = KERNELET_BINARY;
  }
  std::string id = options_.name + "-" + std::to_string(::getpid());
  base_ = "/tmp/kernelet-" + id;
  root_ = base_ + "/root";
  manifests_ = base_ + "/manifests";
  logs_ = base_ + "/logs";
  run_ = "/run/kernelet-" + id;
  cgroup_root_ = "/kernelet-" + id;
}

Result<std::unique_ptr<E2eCluster>> E2eCluster::start(Options options) {
  std::unique_ptr<E2eCluster> c(new E2eCluster(std::move(options)));
  std::error_code ec;
  fs::create_directories(c->manifests_, ec);
  if (ec) {
    return makeError("create", c->manifests_, ec.message());
  }
  TRY(auto server, ApiServer::start(c->base_ + "/api", c->options_.server));
  c->server_ = std::make_unique<ApiServer>(std::move(server));
  for (const auto& image : c->options_.images) {
    std::string layout = std::string(KERNELET_FIXTURES) + "/oci/" + image;
    std::string log = c->base_ + "/import.log";
    std::string cmd = c->options_.binary + " images --root-dir " + c->root_ + " import " + layout +
                      " >" + log + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      return makeError("import image", layout, readFile(log).value_or("failed"));
    }
  }
  return c;
}

E2eCluster::~E2eCluster() {
  (void)stopAgent();
  server_.reset();
  std::error_code ec;
  fs::remove_all(base_, ec);
  // Only if empty: a mount the agent left there must show, not be deleted through.
  ::rmdir(run_.c_str());
  std::string top = "/sys/fs/cgroup" + cgroup_root_;
  for (const char* q : {"/kubepods/burstable", "/kubepods/besteffort", "/kubepods", ""}) {
    ::rmdir((top + q).c_str());
  }
}

void E2eCluster::startAgent(const std::vector<std::string>& extra, bool leave_pods) {
  std::vector<std::string> args = {options_.binary,
                                   "run",
                                   "--port=0",  // several agents (and tests) at once
                                   "--kubeconfig",
                                   server_->kubeconfig(),
                                   "--pod-manifest-path",
                                   manifests_,
                                   "--root-dir",
                                   root_,
                                   "--pod-log-dir",
                                   logs_,
                                   "--run-dir",
                                   run_,
                                   "--cgroup-root",
                                   cgroup_root_,
                                   "--hostname-override",
                                   "node1",
                                   "-v",
                                   std::to_string(options_.verbosity)};
  if (options_.webhook_auth) {
    for (const auto& a :
         {std::string("--node-ip"), std::string("127.0.0.1"), std::string("--client-ca-file"),
          server_->caFile(), std::string("--authentication-token-webhook"),
          std::string("--authorization-mode"), std::string("Webhook")}) {
      args.push_back(a);
    }
  }
  if (!leave_pods) {
    args.push_back("--stop-pods-on-exit");
  }
  args.insert(args.end(), extra.begin(), extra.end());
  agents_++;
  exited_ = false;
  agent_ = spawnLogged(std::move(args), agentLogPath(agents_));
}

int E2eCluster::stopAgent(int sig) {
  if (agent_ <= 0) {
    return -1;
  }
  ::kill(agent_, sig);
  int status = 0;
  ::waitpid(agent_, &status, 0);
  agent_ = -1;
  return status;
}

bool E2eCluster::agentExited() {
  int status = 0;
  if (agent_ > 0 && ::waitpid(agent_, &status, WNOHANG) == agent_) {
    agent_ = -1;
    exited_ = true;
  }
  return exited_;
}

std::string E2eCluster::kubectlCommand(const std::string& env, const std::string& args, int timeout,
                                       bool foreground) const {
  return "KUBECONFIG=" + server_->kubeconfig() + " " + env + "timeout " +
         (foreground ? "--foreground " : "") + std::to_string(timeout) + " kubectl " + args;
}

E2eCluster::Polled E2eCluster::poll(const std::string& args,
                                    const std::function<bool(const std::string&)>& ok,
                                    seconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  Polled p;
  while (steady_clock::now() < deadline) {
    p.out = kubectl(args);
    if (ok(p.out)) {
      p.seen = true;
      return p;
    }
    if (agentExited()) {
      p.out += "\n(the agent has exited)";
      return p;
    }
    std::this_thread::sleep_for(milliseconds(300));
  }
  return p;
}

std::string E2eCluster::waitKubectl(const std::string& args,
                                    const std::function<bool(const std::string&)>& ok,
                                    const std::string& what, seconds timeout) {
  Polled p = poll(args, ok, timeout);
  if (!p.seen) {
    ADD_FAILURE() << what << " not seen in " << timeout.count() << " s; last: " << p.out << "\n"
                  << agentLog();
  }
  return p.out;
}

Result<void> E2eCluster::apply(const std::string& name, const std::string& yaml) {
  std::string file = base_ + "/" + name + ".yaml";
  std::ofstream(file) << yaml;
  std::string out = kubectl("apply -f " + file);
  if (out.find("created") == std::string::npos) {
    return makeError("kubectl apply", file, out);
  }
  return {};
}

Result<void> E2eCluster::waitRunning(const std::vector<std::string>& pods) {
  for (const auto& pod : pods) {
    Polled phase = poll("get pod " + pod + " -o jsonpath={.status.phase}",
                        [](const std::string& s) { return s == "Running"; });
    if (!phase.seen) {
      return makeError("wait for phase Running", pod, phase.out + "\n" + agentLog());
    }
  }
  return {};
}

void E2eCluster::writeManifest(const std::string& file, const std::string& yaml) {
  std::string hidden = manifests_ + "/." + file + ".tmp";
  std::ofstream(hidden) << yaml;
  fs::rename(hidden, manifests_ + "/" + file);
}

void E2eCluster::removeManifest(const std::string& file) {
  std::error_code ec;
  fs::remove(manifests_ + "/" + file, ec);
}

std::string E2eCluster::containerOutput(const std::string& pod) const {
  std::string out;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(logs_, ec)) {
    if (e.path().string().find("/default_" + pod + "_") != std::string::npos &&
        e.path().extension() == ".log") {
      out += readFile(e.path().string()).value_or("");
    }
  }
  return out;
}

std::string E2eCluster::waitOutput(const std::string& pod, const std::string& needle,
                                   seconds timeout) const {
  auto deadline = steady_clock::now() + timeout;
  std::string out;
  while (steady_clock::now() < deadline) {
    out = containerOutput(pod);
    if (out.find(needle) != std::string::npos) {
      return out;
    }
    std::this_thread::sleep_for(milliseconds(300));
  }
  ADD_FAILURE() << "\"" << needle << "\" not in " << pod << "'s output after " << timeout.count()
                << " s: " << out << "\n"
                << agentLog();
  return out;
}

std::string E2eCluster::agentLogPath(int n) const {
  return base_ + "/agent-" + std::to_string(n) + ".log";
}

std::string E2eCluster::agentLog() const {
  std::string all;
  for (int i = 1; i <= agents_; i++) {
    all += "--- agent " + std::to_string(i) + "\n" + readFile(agentLogPath(i)).value_or("");
  }
  return all;
}

std::string E2eCluster::lastAgentLog() const {
  return agents_ == 0 ? "" : readFile(agentLogPath(agents_)).value_or("");
}

std::string E2eCluster::violations() {
  return server_->control("violations", "", false).value_or("?");
}

}  // namespace kernelet::testing
