#include "agent/logs/log_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kernelet::agent::logs {
namespace {

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The names in `dir` (nothing if it is gone).
std::vector<std::string> listDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return names;
  }
  while (const dirent* e = ::readdir(d)) {
    names.emplace_back(e->d_name);
  }
  ::closedir(d);
  return names;
}

}  // namespace

std::string liveLogName(int run) { return std::to_string(run) + ".log"; }

std::optional<RotationKey> rotationKey(std::string_view name, int run) {
  std::string prefix = liveLogName(run) + ".";
  if (!name.starts_with(prefix)) {
    return std::nullopt;
  }
  name.remove_prefix(prefix.size());
  // YYYYMMDD-hhmmss
  if (name.size() < 15 || !allDigits(name.substr(0, 8)) || name[8] != '-' ||
      !allDigits(name.substr(9, 6))) {
    return std::nullopt;
  }
  RotationKey key{.stamp = std::string(name.substr(0, 15))};
  name.remove_prefix(15);
  if (name.empty()) {
    return key;
  }
  if (name[0] != '.' || !allDigits(name.substr(1)) || name.size() > 10) {
    return std::nullopt;
  }
  key.index = std::stoull(std::string(name.substr(1)));
  return key;
}

std::vector<std::pair<RotationKey, std::string>> rotatedAfter(
    const std::string& dir, int run, const std::optional<RotationKey>& after) {
  std::vector<std::pair<RotationKey, std::string>> out;
  for (const std::string& name : listDir(dir)) {
    auto key = rotationKey(name, run);
    if (key && (!after || *after < *key)) {
      std::string path = dir;
      path += '/';
      path += name;
      out.emplace_back(std::move(*key), std::move(path));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<LogFile>> openRunLogFiles(const std::string& dir, int run) {
  std::vector<LogFile> files;
  auto add = [&files](std::optional<RotationKey> key, std::string path) -> Result<void> {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT) {
        return {};  // rotated or removed since the listing
      }
      return sysError("open log", path);
    }
    LogFile f{.path = std::move(path), .key = std::move(key), .fd = UniqueFd(fd)};
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      return sysError("stat log", f.path);
    }
    f.inode = st.st_ino;
    files.push_back(std::move(f));
    return {};
  };
  // The live file first, then the listing of the rotated ones: if it is
  // rotated in between, the listing has it (and it is kept once, as the
  // rotated file it now is); listed first, it could be missed by both.
  TRY_VOID(add(std::nullopt, dir + "/" + liveLogName(run)));
  for (auto& [key, path] : rotatedAfter(dir, run, std::nullopt)) {
    TRY_VOID(add(key, path));
  }
  if (!files.empty() && !files[0].key) {
    std::rotate(files.begin(), files.begin() + 1, files.end());  // oldest first: live last
    for (size_t j = 0; j + 1 < files.size(); j++) {
      if (files[j].inode == files.back().inode) {
        files.pop_back();
        break;
      }
    }
  }
  return files;
}

Result<LogPosition> tailStart(const std::vector<LogFile>& files, int64_t lines) {
  constexpr int64_t kBlock = int64_t{64} * 1024;
  std::string block(kBlock, '\0');
  int64_t seen = 0;  // '\n's counted from the end
  for (size_t i = files.size(); i-- > 0;) {
    struct stat st {};
    if (::fstat(files[i].fd.get(), &st) != 0) {
      return sysError("stat log", files[i].path);
    }
    for (int64_t right = st.st_size; right > 0;) {
      int64_t left = std::max<int64_t>(0, right - kBlock);
      auto want = static_cast<size_t>(right - left);
      ssize_t n = ::pread(files[i].fd.get(), block.data(), want, left);
      if (n < 0) {
        return sysError("read log", files[i].path);
      }
      if (static_cast<size_t>(n) != want) {
        right = left + n;  // truncated under us: count what is there
        continue;
      }
      for (int64_t at = n; at-- > 0;) {
        if (block[static_cast<size_t>(at)] == '\n' && ++seen > lines) {
          return LogPosition{.file = i, .offset = left + at + 1};
        }
      }
      right = left;
    }
  }
  return LogPosition{};
}

}  // namespace kernelet::agent::logs
