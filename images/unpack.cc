#include "images/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <vector>

#include "images/digest.h"

namespace kernelet::images {

namespace {

namespace fs = std::filesystem;

using Archive = std::unique_ptr<archive, int (*)(archive*)>;

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

// The decompressed stream (filter auto-detected, format "raw") is both hashed
// for the diff_id and fed to the tar reader, so the layer is decompressed once.
struct RawSource {
  archive* raw;
  Sha256 hash;
  bool failed = false;
};

la_ssize_t readRaw(archive* /*tar*/, void* data, const void** buf) {
  auto* src = static_cast<RawSource*>(data);
  size_t size = 0;
  la_int64_t offset = 0;
  int rc = archive_read_data_block(src->raw, buf, &size, &offset);
  if (rc == ARCHIVE_EOF) {
    return 0;
  }
  if (rc != ARCHIVE_OK) {
    src->failed = true;
    return -1;
  }
  src->hash.update(*buf, size);
  return static_cast<la_ssize_t>(size);
}

// Lexically normalizes a tar path; empty when it would leave the layer.
std::string cleanPath(const std::string& name) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string::npos) {
      j = name.size();
    }
    std::string part = name.substr(i, j - i);
    if (part == "..") {
      if (parts.empty()) {
        return {};
      }
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& p : parts) {
    out += (out.empty() ? "" : "/") + p;
  }
  return out.empty() ? "." : out;
}

// Refuses an entry whose parent directories include a symlink (one an earlier
// entry made): writing through it could land outside the layer. Directories
// already checked are remembered until a symlink entry appears.
Result<void> checkParents(const std::string& root, const std::string& clean,
                          std::set<std::string>& checked) {
  std::string walked;
  size_t slash = 0;
  while ((slash = clean.find('/', slash)) != std::string::npos) {
    walked = clean.substr(0, slash++);
    if (checked.contains(walked)) {
      continue;
    }
    struct stat st {};
    std::string full = root + "/" + walked;
    if (::lstat(full.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      return makeError("", "", "goes through the symlink " + walked);
    }
    checked.insert(walked);
  }
  return {};
}

std::unexpected<Error> entryError(const std::string& layer, const std::string& entry,
                                  const std::string& what) {
  return makeError("unpack layer " + layer, entry, what);
}

}  // namespace

Result<UnpackedLayer> unpackLayer(const std::string& blob, const std::string& dest,
                                  const std::string& layer) {
  char real[PATH_MAX];
  if (::realpath(dest.c_str(), real) == nullptr) {
    return sysError("open", dest);
  }
  std::string root = real;

  Archive raw(archive_read_new(), archive_read_free);
  // The compressions OCI layers use; naming them keeps the static binary free of
  // the other codecs.
  archive_read_support_filter_gzip(raw.get());
  archive_read_support_filter_zstd(raw.get());
  archive_read_support_filter_none(raw.get());
  archive_read_support_format_raw(raw.get());
  if (archive_read_open_filename(raw.get(), blob.c_str(), 1 << 20) != ARCHIVE_OK) {
    return makeError("unpack layer " + layer, blob, archive_error_string(raw.get()));
  }
  archive_entry* rawEntry = nullptr;
  if (archive_read_next_header(raw.get(), &rawEntry) != ARCHIVE_OK) {
    return makeError("unpack layer " + layer, blob, archive_error_string(raw.get()));
  }
  RawSource src{raw.get(), {}};

  Archive tar(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(tar.get());
  if (archive_read_open(tar.get(), &src, nullptr, readRaw, nullptr) != ARCHIVE_OK) {
    return makeError("unpack layer " + layer, blob, archive_error_string(tar.get()));
  }
  Archive disk(archive_write_disk_new(), archive_write_free);
  // Numeric owners only (no name lookup: the image's names are not the host's).
  // Entry paths are checked below and then made absolute under `root`;
  // SECURE_SYMLINKS refuses to write through a symlink an earlier entry made.
  archive_write_disk_set_options(
      disk.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
                      ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                      ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_UNLINK);

  UnpackedLayer out;
  std::set<std::string> checked;
  archive_entry* e = nullptr;
  for (;;) {
    int rc = archive_read_next_header(tar.get(), &e);
    if (rc == ARCHIVE_EOF) {
      break;
    }
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return makeError(
          "unpack layer " + layer, blob,
          src.failed ? archive_error_string(raw.get()) : archive_error_string(tar.get()));
    }
    std::string name = archive_entry_pathname(e);
    if (name.starts_with("/")) {
      return entryError(layer, name, "absolute path refused");
    }
    std::string clean = cleanPath(name);
    if (clean.empty()) {
      return entryError(layer, name, "path leaves the layer");
    }
    if (auto ok = checkParents(root, clean, checked); !ok) {
      return entryError(layer, name, ok.error().detail);
    }
    out.entries++;
    std::string base = fs::path(clean).filename();
    std::string dir = fs::path(clean).parent_path();
    std::string target_dir = dir.empty() ? root : root + "/" + dir;

    if (base == kOpaqueMarker) {
      // The directory hides everything below it in lower layers.
      if (::lsetxattr(target_dir.c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
        return addContext<UnpackedLayer>(sysError("set opaque", target_dir),
                                         "unpack layer " + layer);
      }
      continue;
    }
    if (base.starts_with(kWhiteoutPrefix)) {
      // A deleted file: overlayfs' whiteout is a 0:0 character device.
      std::string gone = target_dir + "/" + base.substr(kWhiteoutPrefix.size());
      ::unlink(gone.c_str());
      if (::mknod(gone.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0) {
        return addContext<UnpackedLayer>(sysError("create whiteout", gone),
                                         "unpack layer " + layer);
      }
      continue;
    }
    if (const char* link = archive_entry_hardlink(e)) {
      if (std::string(link).starts_with("/") || cleanPath(link).empty()) {
        return entryError(layer, name, std::string("hard link to ") + link + " leaves the layer");
      }
      archive_entry_set_hardlink(e, (root + "/" + cleanPath(link)).c_str());
    }
    if (archive_entry_filetype(e) == AE_IFLNK) {
      checked.clear();  // a directory checked before may be this symlink now
    }
    archive_entry_set_pathname(e, (root + "/" + clean).c_str());
    rc = archive_write_header(disk.get(), e);
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return entryError(layer, name, archive_error_string(disk.get()));
    }
    if (archive_entry_size(e) > 0) {
      const void* buf;
      size_t size;
      la_int64_t offset;
      while ((rc = archive_read_data_block(tar.get(), &buf, &size, &offset)) == ARCHIVE_OK) {
        if (archive_write_data_block(disk.get(), buf, size, offset) != ARCHIVE_OK) {
          return entryError(layer, name, archive_error_string(disk.get()));
        }
      }
      if (rc != ARCHIVE_EOF) {
        return entryError(
            layer, name,
            src.failed ? archive_error_string(raw.get()) : archive_error_string(tar.get()));
      }
    }
    if (archive_write_finish_entry(disk.get()) != ARCHIVE_OK) {
      return entryError(layer, name, archive_error_string(disk.get()));
    }
  }
  if (archive_write_close(disk.get()) != ARCHIVE_OK) {
    return makeError("unpack layer " + layer, dest, archive_error_string(disk.get()));
  }
  // Whatever follows the tar's end (padding) still belongs to the diff_id.
  const void* rest;
  while (readRaw(nullptr, &src, &rest) > 0) {
  }
  if (src.failed) {
    return makeError("unpack layer " + layer, blob, archive_error_string(raw.get()));
  }
  out.diff_id = src.hash.digest();
  return out;
}

Result<UnpackedLayer> unpackLayerAtomically(const std::string& blob, const std::string& dest,
                                            const std::string& layer,
                                            const std::string& expected_diff_id) {
  std::string tmp = dest + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) {
    return makeError("create", tmp, ec.message());
  }
  auto fail = [&](Error e) {
    fs::remove_all(tmp, ec);
    return std::unexpected(std::move(e));
  };
  auto r = unpackLayer(blob, tmp, layer);
  if (!r) {
    return fail(r.error());
  }
  if (!expected_diff_id.empty() && r->diff_id != expected_diff_id) {
    return fail(makeError("unpack layer " + layer, blob,
                          "uncompressed digest " + r->diff_id + " is not the diff_id " +
                              expected_diff_id + " of the image config")
                    .error());
  }
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    return fail(sysError("rename", dest).error());
  }
  return r;
}

}  // namespace kernelet::images
