#pragma once
// Small file operations with errors that name the path. Directories are opened
// once (O_PATH|O_DIRECTORY) and then used with the *At() calls, so a path swapped
// under us cannot redirect a write.

#include <string>
#include <string_view>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet {

// Opens a directory as an O_PATH handle; with nofollow the last component must not be a symlink.
Result<UniqueFd> openDir(const std::string& path, bool nofollow = true);
Result<UniqueFd> openDirAt(int dirfd, const std::string& name, const std::string& shown_path);

// Reads a whole (small, e.g. /proc or cgroupfs) file.
Result<std::string> readFile(const std::string& path);
Result<std::string> readFileAt(int dirfd, const std::string& name, const std::string& shown_path);

// Writes `content` in one write(2), as cgroupfs and procfs want; no create, no truncate.
Result<void> writeFileAt(int dirfd, const std::string& name, std::string_view content,
                         const std::string& shown_path);
Result<void> writeFile(const std::string& path, std::string_view content);

// Creates or replaces a regular file atomically: temp file, fsync, rename.
Result<void> writeFileAtomic(const std::string& path, std::string_view content, int mode = 0644);

}  // namespace kernelet
