#pragma once
// lifecycle.stopSignal (KEP-4960): the signal names the API accepts, and the
// numbers they are on Linux. Real-time signals count as the container runtimes
// count them (moby's signal table, which containerd and CRI-O use): SIGRTMIN is
// 34, SIGRTMAX 64, whatever the C library reserves for itself.

#include <optional>
#include <string>
#include <string_view>

namespace kernelet::agent {

// The signal number of a name the API accepts for a linux pod (SIGTERM,
// SIGRTMIN+3, SIGRTMAX-1); nothing for any other name.
std::optional<int> linuxStopSignal(std::string_view name);

// The API's supported values for a linux pod, quoted and comma-separated, in
// the API's order: "SIGABRT", "SIGALRM", ...
const std::string& linuxStopSignalList();

// The name containerStatuses[].stopSignal reports for a signal number (the
// image's STOPSIGNAL, or SIGTERM): the canonical one (SIGABRT, not SIGIOT).
std::string stopSignalName(int signal);

}  // namespace kernelet::agent
