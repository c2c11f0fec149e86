#include "agent/runtime/mount_propagation.h"

#include <limits.h>
#include <stdlib.h>

#include <sstream>
#include <vector>

#include "sys/fileio.h"

namespace kernelet::agent {

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool covers(const std::string& mount_point, const std::string& path) {
  if (mount_point == "/") {
    return true;
  }
  return path == mount_point || (path.starts_with(mount_point) && path[mount_point.size()] == '/');
}

}  // namespace

std::string mountPropagationIn(std::string_view mountinfo, const std::string& path) {
  std::string best_point, best;
  bool found = false;
  std::istringstream lines{std::string(mountinfo)};
  for (std::string line; std::getline(lines, line);) {
    // id parent major:minor root mount-point options [optional...] - type source super
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string word; words >> word && word != "-";) {
      w.push_back(word);
    }
    if (w.size() < 6) {
      continue;
    }
    std::string point = unescape(w[4]);
    if (!covers(point, path) || (found && point.size() < best_point.size())) {
      continue;
    }
    std::string mode = "private";
    for (size_t i = 6; i < w.size(); i++) {
      if (w[i].starts_with("shared:")) {
        mode = "shared";
        break;
      }
      if (w[i].starts_with("master:")) {
        mode = "slave";
      }
    }
    // A later line with the same mount point is mounted over the earlier one.
    best_point = point;
    best = mode;
    found = true;
  }
  return best;
}

Result<void> checkPropagationSource(const std::string& source, const std::string& mode) {
  if (mode != "HostToContainer" && mode != "Bidirectional") {
    return {};
  }
  char resolved[PATH_MAX];
  if (::realpath(source.c_str(), resolved) == nullptr) {
    return sysError("resolve mount source", source);
  }
  TRY(std::string info, readFile("/proc/self/mountinfo"));
  std::string on = mountPropagationIn(info, resolved);
  if (mode == "Bidirectional" && on != "shared") {
    return makeError("ensure mount propagation", source,
                     "path \"" + source + "\" is not on a shared mount (Bidirectional needs one)");
  }
  if (on != "shared" && on != "slave") {
    return makeError(
        "ensure mount propagation", source,
        "path \"" + source + "\" is not on a shared or slave mount (HostToContainer needs one)");
  }
  return {};
}

}  // namespace kernelet::agent
