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

// Whether writeFileAtomic fsyncs the data before the rename. Readers never see
// a torn file either way (the rename is atomic); the fsync is what makes the
// new content survive a power loss, at the price of a disk flush per write.
enum class Sync { kData, kNone };
// Creates or replaces a regular file atomically: temp file, fsync, rename.
Result<void> writeFileAtomic(const std::string& path, std::string_view content, int mode = 0644,
                             Sync sync = Sync::kData);
// fsync of a directory: makes the renames and creations in it durable.
Result<void> syncDir(const std::string& path);

}  // namespace kernelet
