#include "support/process_util.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace kernelet::testing {

std::vector<char*> argvOf(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  return argv;
}

int spawnLogged(std::vector<std::string> args, const std::string& log) {
  auto argv = argvOf(args);
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fd);
  return pid;
}

std::string readAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

int countLines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string l; std::getline(in, l);) {
    n++;
  }
  return n;
}

int countEntries(const std::string& dir) {
  int n = 0;
  std::error_code ec;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir, ec)) {
    n++;
  }
  return n;
}

int killProcessesMatching(const std::string& name, const std::string& arg) {
  int found = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::ifstream in(e.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(name) != std::string::npos && cmdline.find(arg) != std::string::npos &&
        std::stoi(pid) != ::getpid()) {
      ::kill(std::stoi(pid), SIGKILL);
      found++;
    }
  }
  return found;
}

}  // namespace kernelet::testing
