#include "support/memory_keeper.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace kernelet::testing {
namespace {

Result<UniqueFd> dupFd(int fd) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    return sysError("dup", "fd " + std::to_string(fd));
  }
  return UniqueFd(copy);
}

int64_t nowNs() {
  timespec t{};
  (void)::clock_gettime(CLOCK_REALTIME, &t);  // cannot fail for CLOCK_REALTIME
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

}  // namespace

Result<void> MemoryKeeper::keep(const std::string& id, int pid, uint64_t start_time, int pidfd,
                                std::span<const int> fds) {
  Run run{.pid = pid, .start_time = start_time};
  TRY(run.pidfd, dupFd(pidfd));
  for (int fd : fds) {
    TRY(UniqueFd copy, dupFd(fd));
    run.fds.push_back(std::move(copy));
  }
  runs_[id] = std::move(run);
  return {};
}

Result<std::optional<agent::runtime::KeptRun>> MemoryKeeper::fetch(const std::string& id) {
  auto it = runs_.find(id);
  if (it == runs_.end()) {
    return std::optional<agent::runtime::KeptRun>();
  }
  Run& run = it->second;
  pollfd p{.fd = run.pidfd.get(), .events = POLLIN, .revents = 0};
  if (!run.exit && !run.exit_lost && ::poll(&p, 1, 0) == 1) {
    // Exited: the holder would have its status from the proc connector.
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(run.pidfd.get()), &info, WEXITED | WNOHANG) == 0 &&
        info.si_pid != 0) {
      int status = info.si_code == CLD_EXITED ? (info.si_status & 0xff) << 8 : info.si_status;
      run.exit = agent::runtime::KeptExit{.wait_status = status, .finished_unix_ns = nowNs()};
    } else {
      run.exit_lost = true;  // reaped by someone else: the status is gone
    }
  }
  agent::runtime::KeptRun out;
  out.fds.reserve(run.fds.size());
  TRY(out.pidfd, dupFd(run.pidfd.get()));
  for (const auto& fd : run.fds) {
    TRY(UniqueFd copy, dupFd(fd.get()));
    out.fds.push_back(std::move(copy));
  }
  out.exit = run.exit;
  out.exit_lost = run.exit_lost;
  return std::optional<agent::runtime::KeptRun>(std::move(out));
}

void MemoryKeeper::forget(const std::string& id) { runs_.erase(id); }

Result<std::vector<std::string>> MemoryKeeper::list() {
  std::vector<std::string> ids;
  for (const auto& [id, run] : runs_) {
    ids.push_back(id);
  }
  return ids;
}

void MemoryKeeper::dropFds(const std::string& id) {
  if (auto it = runs_.find(id); it != runs_.end()) {
    it->second.fds.clear();
  }
}

}  // namespace kernelet::testing
