#include "agent/app/last_status.h"

#include <filesystem>

#include "sys/fileio.h"

namespace kernelet::agent {

LastStatuses readLastStatuses(const std::string& pods_dir) {
  LastStatuses out;
  std::error_code ec;
  std::filesystem::directory_iterator it(pods_dir, ec);
  if (ec) {
    if (ec != std::errc::no_such_file_or_directory) {
      out.errors.push_back("read `" + pods_dir + "`: " + ec.message());
    }
    return out;
  }
  // increment(ec), not ++: a directory that goes bad midway is an error, not a throw.
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const auto& entry = *it;
    std::string uid = entry.path().filename().string();
    std::string file = entry.path().string() + "/status.json";
    if (!entry.is_directory(ec)) {
      continue;
    }
    auto text = readFile(file);
    if (!text) {
      if (text.error().errnum != ENOENT) {
        out.errors.push_back(text.error().message());
      }
      continue;
    }
    auto parsed = parsePodJson(*text, file);
    if (!parsed) {
      out.errors.push_back(parsed.error().message());
      continue;
    }
    if (parsed->uid != uid) {
      out.errors.push_back(
          makeError("read pod status", file, "not the status of pod " + uid).error().message());
      continue;
    }
    out.by_uid[uid] = std::move(parsed->status);
  }
  if (ec) {
    out.errors.push_back("read `" + pods_dir + "`: " + ec.message());
  }
  return out;
}

}  // namespace kernelet::agent
