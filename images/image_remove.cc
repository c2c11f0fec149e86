// Removing images from the store: one image and what only it used (what
// image GC and `kernelet images rm` do), and the sweep of unreferenced blobs
// and layers (`kernelet images rm` only). A layer an overlay mounts is never
// removed, whatever the records say: a running container's rootfs stands on it.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "images/digest.h"
#include "images/image_store.h"

namespace kernelet::images {

namespace fs = std::filesystem;

namespace {

// The blocks of the files under `path` (the path itself included), each
// inode once: what removing them frees. Errors count as nothing.
int64_t diskUsage(const std::string& path, std::set<std::pair<dev_t, ino_t>>& seen) {
  int64_t total = 0;
  auto add = [&](const fs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) == 0 && seen.insert({st.st_dev, st.st_ino}).second) {
      total += static_cast<int64_t>(st.st_blocks) * 512;
    }
  };
  add(path);
  std::error_code ec;
  fs::recursive_directory_iterator it(path, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    add(it->path());
  }
  return total;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescapeMountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool octal = true;
      for (size_t k = 1; k <= 3; k++) {
        if (s[i + k] < '0' || s[i + k] > '7') {
          octal = false;
          break;
        }
        v = v * 8 + (s[i + k] - '0');
      }
      if (octal) {
        out += static_cast<char>(v);
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

std::set<std::string> ImageStore::mountedLayers() const {
  std::set<std::string> out;
  const std::string layers = root_ + "/layers/";
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    // ... - overlay overlay rw,lowerdir=A:B,upperdir=...,workdir=...
    size_t dash = line.find(" - overlay ");
    if (dash == std::string::npos) {
      continue;
    }
    size_t at = line.find("lowerdir=", dash);
    if (at == std::string::npos) {
      continue;
    }
    at += 9;
    std::string lower = line.substr(at, line.find(',', at) - at);
    std::istringstream dirs(lower);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      dir = unescapeMountinfo(dir);
      if (dir.starts_with(layers)) {
        out.insert(dir.substr(layers.size()));
      }
    }
  }
  return out;
}

Result<int64_t> ImageStore::removeImage(const std::string& name) {
  std::optional<ImageRecord> gone;
  std::set<std::string> blobs, layers;  // still referred to by the others
  TRY_VOID(update([&](std::vector<ImageRecord>& all) {
    for (auto it = all.begin(); it != all.end(); ++it) {
      if (it->name == name) {
        gone = *it;
        all.erase(it);
        break;
      }
    }
    for (const auto& r : all) {
      blobs.insert(r.manifest_digest);
      blobs.insert(r.config_digest);
      for (const auto& l : r.layers) {
        blobs.insert(l.digest);
        layers.insert(digestHex(l.diff_id));
      }
    }
  }));
  if (!gone) {
    return makeError("remove image", name, "no such image");
  }
  std::set<std::string> mounted = mountedLayers();
  std::set<std::pair<dev_t, ino_t>> seen;
  int64_t freed = 0;
  std::vector<std::string> errors;
  std::vector<std::string> candidates = {gone->manifest_digest, gone->config_digest};
  for (const auto& l : gone->layers) {
    candidates.push_back(l.digest);
  }
  for (const auto& d : candidates) {
    if (blobs.contains(d) || !validateDigest(d)) {
      continue;
    }
    std::string path = content_.path(d);
    int64_t size = diskUsage(path, seen);
    if (::unlink(path.c_str()) == 0) {
      freed += size;
    } else if (errno != ENOENT) {
      errors.push_back(sysError("remove", path).error().message());
    }
  }
  for (const auto& l : gone->layers) {
    if (!validateDigest(l.diff_id)) {
      continue;
    }
    std::string hex = digestHex(l.diff_id);
    if (layers.contains(hex) || mounted.contains(hex)) {
      continue;
    }
    std::string dir = root_ + "/layers/" + hex;
    int64_t size = diskUsage(dir, seen);
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) {
      errors.push_back(makeError("remove", dir, ec.message()).error().message());
    } else {
      freed += size;
    }
  }
  if (!errors.empty()) {
    // The record is gone either way; what is left, collectGarbage may take.
    std::string all;
    for (const auto& e : errors) {
      all += (all.empty() ? "" : "; ") + e;
    }
    return makeError("remove image", name, all);
  }
  return freed;
}

Result<void> ImageStore::remove(const std::string& ref) {
  TRY(ImageRecord r, find(ref));
  TRY(int64_t freed, removeImage(r.name));
  (void)freed;
  return collectGarbage();
}

Result<void> ImageStore::collectGarbage() {
  TRY(std::vector<ImageRecord> all, list());
  std::set<std::string> blobs, layers = mountedLayers();
  for (const auto& r : all) {
    blobs.insert(digestHex(r.manifest_digest));
    blobs.insert(digestHex(r.config_digest));
    for (const auto& l : r.layers) {
      blobs.insert(digestHex(l.digest));
      layers.insert(digestHex(l.diff_id));
    }
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(content_.root() + "/blobs/sha256", ec)) {
    if (!blobs.contains(e.path().filename())) {
      fs::remove(e.path(), ec);
    }
  }
  for (const auto& e : fs::directory_iterator(root_ + "/layers", ec)) {
    std::string name = e.path().filename();
    if (!layers.contains(name) && !name.ends_with(".tmp")) {
      fs::remove_all(e.path(), ec);
    }
  }
  return {};
}

}  // namespace kernelet::images
