#pragma once
// A container's termination message, as the kubelet's runtime manager makes
// it (kuberuntime_container.go: makeMounts, getTerminationMessage,
// readLastStringFromContainerLogs): each run gets a fresh empty file under
// ROOT/pods/<uid>/containers/<name>/, bind-mounted read-write at its
// terminationMessagePath; when the run ended, the last 4 KiB of that file
// (or, with FallbackToLogsOnError, an empty file and a failed run, the last
// 80 lines / 2 KiB of the run's log) follow the runtime's own message in
// state.terminated.message. The pod's 12 KiB budget is the status's
// (agent/status/pod_status.h, capTerminationMessages).
//
// The file belongs to the container, which may have replaced it with a
// symlink or a FIFO: it is opened without following a link and without
// blocking, must be a regular file, and is read bounded.

#include <cstddef>
#include <optional>
#include <string>

#include "sys/result.h"

namespace kernelet::agent::runtime {

// kubecontainer's limits.
constexpr size_t kMaxContainerTerminationMessageLength = 4096;
constexpr size_t kMaxContainerTerminationMessageLogLength = 2048;
constexpr int kMaxContainerTerminationMessageLogLines = 80;

// A new empty file (mode 0666 whatever the umask, as the kubelet makes it so
// any user of the container can write it) named by 8 random hex digits in
// `dir`, which is made if missing. Its path.
Result<std::string> createTerminationFile(const std::string& dir);

// At most the last kMaxContainerTerminationMessageLength bytes of the file at
// `path`. nullopt: there is no such file. An error: it is not a regular file
// (a symlink, a FIFO, a directory) or cannot be read.
Result<std::optional<std::string>> readTerminationFile(const std::string& path);

// What the run logged last: its last kMaxContainerTerminationMessageLogLines
// lines (both streams, decoded, as `kubectl logs --tail` shows them), cut to
// their last kMaxContainerTerminationMessageLogLength bytes. `log_path` is
// the run's live log, DIR/<run>.log (its rotated files are read too).
Result<std::string> readLogTail(const std::string& log_path);

// How a run ended, and where to look for its message.
struct TerminationInput {
  std::string message;  // the runtime's own (an exit it could not learn)
  int exit_code = 0;
  std::string reason;
  std::string file;               // the run's termination file; empty: none
  bool fallback_to_logs = false;  // terminationMessagePolicy FallbackToLogsOnError
  std::string log_path;
};

// The message for state.terminated.message, in the kubelet's words: the
// runtime's message, then ": " and the termination message when both are
// there; a file that cannot be read gives "Error on reading termination log
// PATH: ERROR".
std::string terminationMessage(const TerminationInput& in);

}  // namespace kernelet::agent::runtime
