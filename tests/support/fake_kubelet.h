#pragma once
// tests/support/fake_kubelet.py on a loopback port (a stand-in kubelet for
// what the test API server proxies and relays to it). The test target defines
// KERNELET_FAKE_KUBELET, the script's path.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace kernelet::testing {

// The fake kubelet as a child process, killed with the object.
class FakeKubelet {
 public:
  ~FakeKubelet() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // Starts it; its port, or 0 (with the reason in `error`).
  int start(const std::string& dir, const std::string& ca, std::string& error) {
    std::string d = dir + "/";
    // Its own self-signed serving certificate: the API server must not verify it.
    if (std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=fake-kubelet "
                     "-keyout " +
                     d + "kubelet.key -out " + d + "kubelet.crt >/dev/null 2>&1")
                        .c_str()) != 0) {
      error = "openssl failed";
      return 0;
    }
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      error = "pipe failed";
      return 0;
    }
    std::vector<std::string> args = {"python3",     KERNELET_FAKE_KUBELET,
                                     "--cert",      d + "kubelet.crt",
                                     "--key",       d + "kubelet.key",
                                     "--client-ca", ca,
                                     "--logs",      logs(dir),
                                     "--record",    d + "kubelet-requests.jsonl"};
    std::filesystem::create_directories(logs(dir));
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      argv.reserve(args.size() + 1);
      for (auto& a : args) {
        argv.push_back(a.data());
      }
      argv.push_back(nullptr);
      (void)::dup2(out[1], 1);  // a failure shows as no "listening on" line
      ::execvp("python3", argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    FILE* f = ::fdopen(out[0], "r");
    char line[128] = {};
    int port = 0;
    if (std::fgets(line, sizeof line, f) == nullptr ||
        std::sscanf(line, "listening on %d", &port) != 1) {
      error = std::string("no \"listening on PORT\" from the fake kubelet: ") + line;
    }
    (void)std::fclose(f);  // a read end: nothing to flush, nothing to lose
    return port;
  }
  static std::string logs(const std::string& dir) { return dir + "/kubelet-logs"; }

 private:
  pid_t pid_ = -1;
};

}  // namespace kernelet::testing
