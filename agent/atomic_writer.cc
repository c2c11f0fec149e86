#include "agent/atomic_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <set>

#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;

// What DIR/..data holds now: relative path -> file; nothing when there is no ..data.
std::optional<std::map<std::string, VolumeFile>> current(const std::string& dir) {
  std::error_code ec;
  fs::path data = fs::path(dir) / "..data";
  if (!fs::is_symlink(data, ec)) {
    return std::nullopt;
  }
  std::map<std::string, VolumeFile> out;
  for (auto it = fs::recursive_directory_iterator(data, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) {
      continue;
    }
    auto text = readFile(it->path().string());
    struct stat st {};
    if (!text || ::stat(it->path().c_str(), &st) != 0) {
      return std::nullopt;
    }
    out[fs::relative(it->path(), data, ec).string()] = {*text,
                                                        static_cast<int>(st.st_mode & 07777)};
  }
  return out;
}

std::string timestampedName() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  ::gmtime_r(&now.tv_sec, &utc);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "..%Y_%m_%d_%H_%M_%S.", &utc);
  return std::string(buf, n) + std::to_string(now.tv_nsec);
}

Result<void> writeOne(const fs::path& path, const VolumeFile& f, std::optional<gid_t> group) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) {
    return makeError("mkdir", path.parent_path().string(), ec.message());
  }
  TRY_VOID(writeFileAtomic(path.string(), f.content, f.mode));
  // writeFileAtomic's mode passes through the umask: set it exactly.
  if (::chmod(path.c_str(), static_cast<mode_t>(f.mode)) != 0) {
    return sysError("chmod", path.string());
  }
  if (group && ::chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0) {
    return sysError("chown", path.string());
  }
  return {};
}

std::set<std::string> topLevel(const std::map<std::string, VolumeFile>& files) {
  std::set<std::string> out;
  for (const auto& [path, f] : files) {
    out.insert(path.substr(0, path.find('/')));
  }
  return out;
}

}  // namespace

Result<bool> writeAtomically(const std::string& dir, const std::map<std::string, VolumeFile>& files,
                             std::optional<gid_t> group) {
  std::map<std::string, VolumeFile> want = files;
  if (group) {
    for (auto& [path, f] : want) {
      f.mode |= 0440;  // the fsGroup can read every file, as with the kubelet's SetVolumeOwnership
    }
  }
  auto old = current(dir);
  if (old && *old == want) {
    return false;
  }
  std::error_code ec;
  std::string old_target;
  if (old) {
    old_target = fs::read_symlink(fs::path(dir) / "..data", ec).string();
  }
  std::string stamp = timestampedName();
  fs::path fresh = fs::path(dir) / stamp;
  auto undo = [&](Error e) {
    fs::remove_all(fresh, ec);
    return std::unexpected(std::move(e));
  };
  if (::mkdir(fresh.c_str(), 0755) != 0) {
    return sysError("mkdir", fresh.string());
  }
  if (group && (::chown(fresh.c_str(), static_cast<uid_t>(-1), *group) != 0)) {
    return undo(sysError("chown", fresh.string()).error());
  }
  for (const auto& [path, f] : want) {
    if (auto r = writeOne(fresh / path, f, group); !r) {
      return undo(r.error());
    }
  }
  // The swap: ..data_tmp -> the new dir, renamed over ..data.
  std::string tmp = dir + "/..data_tmp";
  ::unlink(tmp.c_str());
  if (::symlink(stamp.c_str(), tmp.c_str()) != 0) {
    return undo(sysError("symlink", tmp).error());
  }
  if (::rename(tmp.c_str(), (dir + "/..data").c_str()) != 0) {
    Error e = sysError("rename", dir + "/..data").error();
    ::unlink(tmp.c_str());
    return undo(e);
  }
  // The user-visible names: new ones linked, vanished ones removed.
  std::set<std::string> names = topLevel(want);
  for (const auto& name : names) {
    std::string link = dir + "/" + name;
    struct stat st {};
    if (::lstat(link.c_str(), &st) != 0 &&
        ::symlink(("..data/" + name).c_str(), link.c_str()) != 0) {
      return sysError("symlink", link);
    }
  }
  if (old) {
    for (const auto& name : topLevel(*old)) {
      if (!names.contains(name)) {
        ::unlink((dir + "/" + name).c_str());
      }
    }
    if (!old_target.empty() && old_target.starts_with("..")) {
      fs::remove_all(fs::path(dir) / old_target, ec);
    }
  }
  return true;
}

}  // namespace kernelet::agent
