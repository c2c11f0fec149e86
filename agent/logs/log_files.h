#pragma once
// The files one run of a container logged to, in the order they were written:
// the rotated ones (N.log.YYYYMMDD-hhmmss, with .1, .2, ... for rotations in
// the same second; isolation/cri_log.cc rotate()) by time, then the live N.log.
// And where the last N lines of them begin, found by reading backwards from
// the end in blocks, so `tailLines=10` of a 100 MiB log reads kilobytes.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::logs {

// A rotated file's place in time: its stamp, then the same-second index (0
// for none). The live N.log has no key and comes after every rotated one.
struct RotationKey {
  std::string stamp;
  uint64_t index = 0;
  auto operator<=>(const RotationKey&) const = default;
};

// `name` is N.log.<stamp>[.i] of run `run`: its key; else nullopt.
std::optional<RotationKey> rotationKey(std::string_view name, int run);

// "N.log".
std::string liveLogName(int run);

struct LogFile {
  std::string path;
  std::optional<RotationKey> key;  // nullopt: the live N.log
  UniqueFd fd;
  ino_t inode = 0;
};

// Opens the run's files in `dir`, oldest first. The live file is opened
// before the rotated ones are listed, so one rotated in between is kept once,
// under its new name; a rotated file removed before its open is left out; a
// missing directory is no files. Errors: the directory's files cannot be
// opened for another reason than being gone.
Result<std::vector<LogFile>> openRunLogFiles(const std::string& dir, int run);

// The rotated files of the run now in `dir` whose key is after `after`
// (all of them for nullopt), oldest first, not opened.
std::vector<std::pair<RotationKey, std::string>> rotatedAfter(
    const std::string& dir, int run, const std::optional<RotationKey>& after);

struct LogPosition {
  size_t file = 0;     // index into the files
  int64_t offset = 0;  // byte offset in that file
};

// Where the last `lines` lines of `files` (oldest first, read as one text)
// begin, as the kubelet's tail finds it: after the (lines+1)-th '\n' from the
// end, the end's own '\n' being the first. Fewer lines than that: the start.
Result<LogPosition> tailStart(const std::vector<LogFile>& files, int64_t lines);

}  // namespace kernelet::agent::logs
