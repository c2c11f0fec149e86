// End to end in the test VM: exec, attach, terminals, port-forward and cp (issue #18)
// as a cluster's users reach them. Real kubectl through the test API server,
// which relays pods/exec, pods/attach and pods/portforward to the agent's :10250 with its
// kubelet client certificate (tests/apiserver/streamrelay.py), every case
// twice: with kubectl's defaults (WebSocket first, SPDY when the upgrade
// fails) and with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false and
// KUBECTL_PORT_FORWARD_WEBSOCKETS=false (SPDY only). The API server's record
// of requests tells which framing kubectl asked for (a WebSocket upgrade is a
// GET, SPDY's a POST); port-forward's WebSocket case also checks that the
// tunnel served it (no fallback, and the agent's -v=2 line names the protocol).
//
// One API server, one agent and three pods serve every case, to stay cheap:
//   shell  app: sleeps; what exec and cp run in
//   web    app: busybox httpd on :8080 serving index.html from an emptyDir
//   tty    app: a shell started with stdin and a terminal; what attach joins
//   shared app: sleeps; done: exits at once (restartPolicy Never), so exec
//          and attach meet a container of a running pod that does not run
// (kubectl run -it --rm and run -i --rm make and delete pods of their own).
// Every failure prints what kubectl said and the agent's log.

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/e2e_cluster.h"
#include "support/privileged.h"
#include "sys/fileio.h"

namespace kernelet {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

const std::string kImage = testing::kFixtureImage;
const std::string kSpdyOnly =
    "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false KUBECTL_PORT_FORWARD_WEBSOCKETS=false ";

struct Output {
  std::string out, err;
  int rc = -1;
};

// Runs `cmd` through the shell, stdout and stderr apart.
Output run(const std::string& cmd, const std::string& scratch) {
  Output o;
  std::string err = scratch + "/stderr";
  FILE* p = ::popen((cmd + " 2>" + err).c_str(), "r");
  if (p == nullptr) {
    o.err = "popen failed";
    return o;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    o.out.append(buf, n);
  }
  int status = ::pclose(p);
  o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.err = readFile(err).value_or("");
  return o;
}

// The API server, the agent and the pods every case shares; why they are
// not there, if they are not.
std::unique_ptr<testing::E2eCluster> cluster;
std::string setup_error;

// Writes NAME.yaml with `spec` for node1 and applies it.
void applyPod(const std::string& name, const std::string& spec) {
  auto r = cluster->apply(name, "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
                                    "}\nspec:\n  nodeName: node1\n"
                                    "  terminationGracePeriodSeconds: 1\n" +
                                    spec);
  if (!r) {
    setup_error += r.error().message();
  }
}

void startCluster() {
  auto c = testing::E2eCluster::start(
      {.name = "streams", .server = {.validate_agent = "admin"}, .webhook_auth = true});
  if (!c) {
    setup_error = c.error().message();
    return;
  }
  cluster = std::move(*c);
  fs::create_directories(cluster->base() + "/scratch");
  cluster->startAgent();
  applyPod("shell", "  containers:\n  - name: app\n    image: " + kImage +
                        "\n    imagePullPolicy: Never\n    command: [sh, -c, 'exec sleep 3600']\n");
  applyPod("web",
           "  volumes: [{name: www, emptyDir: {}}]\n  containers:\n  - name: app\n"
           "    image: " +
               kImage +
               "\n    imagePullPolicy: Never\n    volumeMounts: [{name: www, mountPath: "
               "/www}]\n    command: [sh, -c, 'echo hello-from-pod > /www/index.html; "
               "exec httpd -f -p 8080 -h /www']\n");
  applyPod("tty", "  containers:\n  - name: app\n    image: " + kImage +
                      "\n    imagePullPolicy: Never\n    stdin: true\n    tty: true\n"
                      "    command: [sh]\n");
  applyPod("shared", "  restartPolicy: Never\n  containers:\n  - name: app\n    image: " + kImage +
                         "\n    imagePullPolicy: Never\n    command: [sh, -c, 'exec sleep 3600']\n"
                         "  - name: done\n    image: " +
                         kImage + "\n    imagePullPolicy: Never\n    command: ['true']\n");
  if (!setup_error.empty()) {
    return;
  }
  if (auto r = cluster->waitRunning({"shell", "web", "tty", "shared"}); !r) {
    setup_error = r.error().message();
  }
}

// The parameter: true for kubectl's defaults (WebSocket first), false for SPDY only.
class StreamsE2E : public ::testing::TestWithParam<bool> {
 protected:
  static void TearDownTestSuite() { cluster.reset(); }

  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    KERNELET_REQUIRE_TOOLS("/usr/bin/kubectl", "/usr/bin/curl");
    if (!cluster && setup_error.empty()) {
      startCluster();
    }
    ASSERT_TRUE(setup_error.empty()) << setup_error;
    scratch_ = cluster->base() + "/scratch/" + (GetParam() ? "ws" : "spdy");
    fs::create_directories(scratch_);
    requests_before_ = requests().size();
  }

  std::string env() const { return GetParam() ? "" : kSpdyOnly; }
  Output kubectl(const std::string& args, const std::string& stdin_from = "") {
    std::string cmd = cluster->kubectlCommand(env(), args);
    if (!stdin_from.empty()) {
      cmd = stdin_from + " | " + cmd;
    }
    return run(cmd, scratch_);
  }
  std::string requests() {
    auto r = cluster->server().control("requests", "", false);
    return r ? *r : "";
  }
  // The framing kubectl asked for since the case began: a WebSocket upgrade
  // is a GET of the subresource, SPDY's a POST.
  void expectFraming(const std::string& subresource) {
    std::string seen = requests().substr(requests_before_);
    std::regex ws(R"re("method": "GET", "path": "/api/v1/namespaces/default/pods/[a-z]+/)re" +
                  subresource + "\"");
    std::regex spdy(R"re("method": "POST", "path": "/api/v1/namespaces/default/pods/[a-z]+/)re" +
                    subresource + "\"");
    if (GetParam()) {
      EXPECT_TRUE(std::regex_search(seen, ws)) << "no WebSocket attempt at " << subresource;
    } else {
      EXPECT_FALSE(std::regex_search(seen, ws)) << "a WebSocket attempt despite SPDY only";
      EXPECT_TRUE(std::regex_search(seen, spdy)) << "no SPDY upgrade of " << subresource;
    }
  }
  std::string context() const { return "\nagent log:\n" + cluster->agentLog(); }

  std::string scratch_;
  size_t requests_before_ = 0;
};

TEST_P(StreamsE2E, ExecPassesStdoutAndStderrApartAndExitsWithTheCommandsCode) {
  Output o = kubectl("exec shell -- sh -c 'echo out; echo err >&2; exit 3'");
  EXPECT_EQ(o.rc, 3) << o.out << o.err << context();
  EXPECT_EQ(o.out, "out\n") << o.err;
  EXPECT_NE(o.err.find("err\n"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("command terminated with exit code 3"), std::string::npos) << o.err;
  Output ok = kubectl("exec shell -- true");
  EXPECT_EQ(ok.rc, 0) << ok.out << ok.err;
  expectFraming("exec");
}

TEST_P(StreamsE2E, StdinReachesTheCommandAndItsEndEndsIt) {
  Output o = kubectl("exec -i shell -- cat", "echo data");
  EXPECT_EQ(o.rc, 0) << o.err << context();
  EXPECT_EQ(o.out, "data\n") << o.err;
  expectFraming("exec");
}

// Reads `fd` into `seen` until `pattern` turns up after `from` or `limit` passes.
bool readUntil(int fd, std::string& seen, const std::string& pattern, size_t from = 0,
               seconds limit = seconds(120)) {
  auto deadline = steady_clock::now() + limit;
  while (seen.find(pattern, from) == std::string::npos) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
      return false;
    }
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      return seen.find(pattern, from) != std::string::npos;  // EIO: kubectl has exited
    }
    seen.append(buf, static_cast<size_t>(n));
  }
  return true;
}

// kubectl under a pseudo-terminal the test drives, as a user's terminal.
class Terminal {
 public:
  explicit Terminal(const std::string& cmd) {
    winsize ws{};
    ws.ws_row = 24;
    ws.ws_col = 80;
    pid_ = ::forkpty(&master_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Terminal() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) {
      ::close(master_);
    }
  }
  bool started() const { return pid_ > 0; }
  bool type(const std::string& text) {
    return ::write(master_, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  }
  // Waits for `pattern` in what the terminal shows after offset `from`.
  bool shows(const std::string& pattern, size_t from = 0, seconds limit = seconds(120)) {
    return readUntil(master_, seen_, pattern, from, limit);
  }
  bool resize(unsigned short rows, unsigned short cols) {
    winsize ws{};
    ws.ws_row = rows;
    ws.ws_col = cols;
    return ::ioctl(master_, TIOCSWINSZ, &ws) == 0;  // kubectl gets SIGWINCH
  }
  const std::string& seen() const { return seen_; }
  // Reads to the end (kubectl closes the terminal); kubectl's exit status.
  int wait() {
    (void)readUntil(master_, seen_, "\x01never");  // ends at EIO: the output is all there
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) {
      return -1;
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  std::string seen_;
};

TEST_P(StreamsE2E, TerminalRunsAShellThatSeesTypingAndResizes) {
  // --foreground: kubectl stays in the terminal's foreground group (timeout
  // would otherwise put it in a group of its own, stopped at its first read).
  Terminal t(cluster->kubectlCommand(env(), "exec -it shell -- sh", 180, true));
  ASSERT_TRUE(t.started()) << "forkpty";
  ASSERT_TRUE(t.shows("# ")) << "no prompt: " << t.seen() << context();
  ASSERT_TRUE(t.type("echo typed-$((6*7))\r"));
  EXPECT_TRUE(t.shows("typed-42")) << t.seen();
  size_t mark = t.seen().size();
  ASSERT_TRUE(t.type("stty size\r"));
  EXPECT_TRUE(t.shows("24 80", mark)) << t.seen();
  ASSERT_TRUE(t.resize(33, 101));
  // kubectl may send the new size a moment after the signal: ask until it shows.
  bool resized = false;
  for (int i = 0; i < 10 && !resized; i++) {
    mark = t.seen().size();
    ASSERT_TRUE(t.type("stty size\r"));
    resized = t.shows("33 101", mark, seconds(10));
  }
  EXPECT_TRUE(resized) << t.seen();
  ASSERT_TRUE(t.type("exit 7\r"));
  EXPECT_EQ(t.wait(), 7) << t.seen();
  expectFraming("exec");
}

// A container started with `stdin: true, tty: true` (the tty pod): kubectl
// attach -it joins its terminal - no replay, so the case types before it
// looks - and what the shell prints is in the container's log as stdout.
TEST_P(StreamsE2E, AttachJoinsAContainersTerminalWhoseOutputIsLogged) {
  std::string mark = GetParam() ? "ws" : "spdy";
  Terminal t(cluster->kubectlCommand(env(), "attach -it tty", 180, true));
  ASSERT_TRUE(t.started()) << "forkpty";
  // Typed before the session is up, the line waits in kubectl's terminal
  // and goes out once it is; typed again if it was not (none is lost twice).
  std::string want = "attached-" + mark + "-42";
  bool shown = false;
  for (int i = 0; i < 5 && !shown; i++) {
    ASSERT_TRUE(t.type("echo attached-" + mark + "-$((6*7))\r"));
    shown = t.shows(want, 0, seconds(i == 0 ? 60 : 20));
  }
  ASSERT_TRUE(shown) << t.seen() << context();
  auto logs = cluster->poll(
      "logs tty", [&](const std::string& s) { return s.find(want) != std::string::npos; });
  EXPECT_TRUE(logs.seen) << logs.out;
  expectFraming("attach");
}

// kubectl run -it --rm: the pod is made with stdin, stdinOnce and tty,
// attached to once Running, deleted at the end, and kubectl exits with the
// container's code.
TEST_P(StreamsE2E, RunItRmAttachesThenDeletesThePodAndExitsWithItsCode) {
  std::string name = GetParam() ? "runws" : "runspdy";  // expectFraming: [a-z]+
  Terminal t(cluster->kubectlCommand(
      env(),
      "run " + name + " -it --rm --restart=Never --image=" + kImage +
          " --image-pull-policy=Never --overrides='{\"apiVersion\": \"v1\", \"spec\": "
          "{\"nodeName\": \"node1\", \"terminationGracePeriodSeconds\": 1}}' -- sh",
      240, true));
  ASSERT_TRUE(t.started()) << "forkpty";
  bool shown = false;
  for (int i = 0; i < 5 && !shown; i++) {
    ASSERT_TRUE(t.type("echo run-$((6*7))\r"));
    shown = t.shows("run-42", 0, seconds(i == 0 ? 120 : 20));
  }
  ASSERT_TRUE(shown) << t.seen() << context();
  ASSERT_TRUE(t.type("exit 5\r"));
  EXPECT_EQ(t.wait(), 5) << t.seen() << context();
  EXPECT_NE(t.seen().find("pod \"" + name + "\" deleted"), std::string::npos) << t.seen();
  auto left = cluster->poll("get pod " + name + " -o name", [](const std::string& s) {
    return s.find("NotFound") != std::string::npos;
  });
  EXPECT_TRUE(left.seen) << left.out;
  expectFraming("attach");
}

// echo x | kubectl run -i --rm (no -t): the pod is made with stdin and
// stdinOnce but no terminal. The end of kubectl's stdin closes the
// container's stdin (containerd's rule), so cat prints what came and ends,
// the pod completes, kubectl exits with its code and deletes it.
TEST_P(StreamsE2E, RunIRmWithoutATerminalEndsAtTheEndOfStdin) {
  std::string name = GetParam() ? "catws" : "catspdy";  // expectFraming: [a-z]+
  Output o = kubectl("run " + name + " -i --rm --restart=Never --image=" + kImage +
                         " --image-pull-policy=Never --overrides='{\"apiVersion\": \"v1\", "
                         "\"spec\": {\"nodeName\": \"node1\", "
                         "\"terminationGracePeriodSeconds\": 1}}' -- sh -c 'cat; echo cat-ended; "
                         "exit 4'",
                     "echo piped-data");
  EXPECT_EQ(o.rc, 4) << o.out << o.err << context();
  EXPECT_NE(o.out.find("piped-data\ncat-ended\n"), std::string::npos) << o.out << o.err;
  EXPECT_NE((o.out + o.err).find("pod \"" + name + "\" deleted"), std::string::npos)
      << o.out << o.err;
  auto left = cluster->poll("get pod " + name + " -o name", [](const std::string& s) {
    return s.find("NotFound") != std::string::npos;
  });
  EXPECT_TRUE(left.seen) << left.out;
  expectFraming("attach");
}

// exec and attach into a container of a running pod that does not run (it
// exited): the kubelet's 500 before any upgrade, which kubectl prints (after
// its WebSocket attempt failed the same way, through its SPDY fallback).
TEST_P(StreamsE2E, ExecAndAttachIntoAnExitedContainerPrintTheKubeletsError) {
  auto state = cluster->poll(
      "get pod shared -o 'jsonpath={.status.containerStatuses[?(@.name==\"done\")].state."
      "terminated.reason}'",
      [](const std::string& s) { return s == "Completed"; });
  ASSERT_TRUE(state.seen) << state.out << context();
  Output e = kubectl("exec shared -c done -- true");
  EXPECT_NE(e.rc, 0) << e.out << e.err;
  EXPECT_NE(e.err.find("container not found (\"done\")"), std::string::npos) << e.err << context();
  if (!GetParam()) {
    EXPECT_NE(e.err.find("unable to upgrade connection: container not found"), std::string::npos)
        << e.err;
  }
  Output a = kubectl("attach shared -c done");
  EXPECT_NE(a.rc, 0) << a.out << a.err;
  EXPECT_NE(a.err.find("container not found (\"done\")"), std::string::npos) << a.err;
  Output ok = kubectl("exec shared -c app -- true");
  EXPECT_EQ(ok.rc, 0) << ok.out << ok.err << context();
  expectFraming("exec");
}

// kubectl debug -it --target: an ephemeral container with stdin and a
// terminal is added to the running shell pod, in its app container's PID
// namespace, and kubectl attaches to it: its shell sees the target's sleep.
TEST_P(StreamsE2E, DebugItAttachesToAnEphemeralShellThatSeesTheTarget) {
  std::string name = GetParam() ? "dbgws" : "dbgspdy";
  Terminal t(cluster->kubectlCommand(
      env(),
      "debug -it shell --image=" + kImage +
          " --image-pull-policy=Never --target=app --container=" + name + " -- sh",
      240, true));
  ASSERT_TRUE(t.started()) << "forkpty";
  bool shown = false;
  for (int i = 0; i < 5 && !shown; i++) {
    ASSERT_TRUE(t.type("echo debug-$((6*7)); ps -o comm | grep -c sleep\r"));
    shown = t.shows("debug-42", 0, seconds(i == 0 ? 120 : 20));
  }
  ASSERT_TRUE(shown) << t.seen() << context();
  size_t mark = t.seen().find("debug-42");
  EXPECT_TRUE(t.shows("\n1", mark))
      << "the target's sleep is not in its PID namespace: " << t.seen();
  ASSERT_TRUE(t.type("exit\r"));
  (void)t.wait();
  auto state =
      cluster->poll("get pod shell -o jsonpath='{.status.ephemeralContainerStatuses[?(@.name==\"" +
                        name + "\")].state.terminated.exitCode}'",
                    [](const std::string& s) { return s == "0"; });
  EXPECT_TRUE(state.seen) << state.out << context();
  expectFraming("attach");
}

TEST_P(StreamsE2E, PortForwardServesTwentyConcurrentRequests) {
  std::string log = scratch_ + "/port-forward.log";
  pid_t pf = ::fork();
  ASSERT_GE(pf, 0);
  if (pf == 0) {
    ::setpgid(0, 0);  // a group of its own: the end of the case ends all of it
    std::string cmd =
        cluster->kubectlCommand(env(), "port-forward pod/web :8080", 600) + " >" + log + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // "Forwarding from 127.0.0.1:PORT -> 8080"
  std::smatch m;
  std::string text;
  std::regex forwarding(R"(Forwarding from 127\.0\.0\.1:(\d+) -> 8080)");
  auto deadline = steady_clock::now() + seconds(120);
  int status = 0;
  bool exited = false;
  while (!std::regex_search(text = readFile(log).value_or(""), m, forwarding) &&
         steady_clock::now() < deadline) {
    if (::waitpid(pf, &status, WNOHANG) == pf) {
      exited = true;  // it gave up (its log says why)
      text = readFile(log).value_or("");
      break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  std::string port = m.size() > 1 ? m[1].str() : "";
  EXPECT_FALSE(port.empty()) << text << context();
  if (!port.empty()) {
    std::vector<std::future<Output>> answers;
    for (int i = 0; i < 20; i++) {
      std::string dir = scratch_ + "/curl" + std::to_string(i);
      fs::create_directories(dir);
      answers.push_back(std::async(std::launch::async, [port, dir] {
        return run("curl -s --max-time 120 http://127.0.0.1:" + port + "/index.html", dir);
      }));
    }
    int good = 0;
    for (auto& a : answers) {
      Output o = a.get();
      good += o.out == "hello-from-pod\n" ? 1 : 0;
      EXPECT_EQ(o.out, "hello-from-pod\n") << o.rc << o.err;
    }
    EXPECT_EQ(good, 20) << readFile(log).value_or("") << context();
  }
  if (!exited) {
    ::kill(-pf, SIGTERM);
    ::waitpid(pf, &status, 0);
  }
  expectFraming("portforward");
  if (GetParam()) {
    // kubectl's first try, SPDY tunneled in WebSocket, must be what served
    // it: no SPDY fallback (a POST), and the agent names the protocol.
    std::regex fallback(
        R"re("method": "POST", "path": "/api/v1/namespaces/default/pods/web/portforward")re");
    EXPECT_FALSE(std::regex_search(requests().substr(requests_before_), fallback))
        << "kubectl fell back to SPDY" << context();
    EXPECT_NE(
        cluster->agentLog().find(
            R"("Port-forward connection" pod="default/web" protocol="SPDY/3.1+portforward.k8s.io")"),
        std::string::npos)
        << context();
  }
}

TEST_P(StreamsE2E, CpCopiesTenMebibytesInAndOutIntact) {
  std::string local = scratch_ + "/big", back = scratch_ + "/back";
  Output made =
      run("head -c 10485760 /dev/urandom > " + local + " && sha256sum < " + local, scratch_);
  ASSERT_EQ(made.rc, 0) << made.err;
  std::string sum = made.out.substr(0, 64);
  std::string remote = std::string("/tmp/big-") + (GetParam() ? "ws" : "spdy");
  Output in = kubectl("cp " + local + " shell:" + remote);
  EXPECT_EQ(in.rc, 0) << in.out << in.err << context();
  Output there = kubectl("exec shell -- sha256sum " + remote);
  EXPECT_EQ(there.out.substr(0, 64), sum) << there.out << there.err;
  Output out = kubectl("cp shell:" + remote + " " + back);
  EXPECT_EQ(out.rc, 0) << out.out << out.err;
  Output local_sum = run("sha256sum < " + back, scratch_);
  EXPECT_EQ(local_sum.out.substr(0, 64), sum) << local_sum.err;
  expectFraming("exec");
}

INSTANTIATE_TEST_SUITE_P(Framings, StreamsE2E, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "WebSocketFirst" : "SpdyOnly";
                         });

}  // namespace
}  // namespace kernelet
