#pragma once
// Builds small tar (optionally gzip) layers for image tests, entry by entry,
// including the malicious ones a real builder would never write.

#include <archive.h>
#include <archive_entry.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace kernelet::testing {

struct TarEntry {
  std::string path;
  char type = 'f';      // 'f' file, 'd' dir, 'l' symlink, 'h' hard link
  std::string content;  // file content, or the link target
  int mode = 0644;
};

enum class Compression { kNone, kGzip, kZstd };

inline bool writeLayer(const std::string& out, const std::vector<TarEntry>& entries,
                       Compression compression = Compression::kGzip) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (compression == Compression::kGzip) {
    archive_write_add_filter_gzip(a);
  } else if (compression == Compression::kZstd) {
    archive_write_add_filter_zstd(a);
  }
  if (archive_write_open_filename(a, out.c_str()) != ARCHIVE_OK) {
    archive_write_free(a);
    return false;
  }
  for (const auto& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.path.c_str());
    archive_entry_set_perm(e, static_cast<mode_t>(t.mode));
    archive_entry_set_mtime(e, 0, 0);
    switch (t.type) {
      case 'd':
        archive_entry_set_filetype(e, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, t.content.c_str());
        break;
      case 'c':  // content is "major:minor"
        archive_entry_set_filetype(e, AE_IFCHR);
        archive_entry_set_rdevmajor(e, static_cast<dev_t>(std::stoi(t.content)));
        archive_entry_set_rdevminor(
            e, static_cast<dev_t>(std::stoi(t.content.substr(t.content.find(':') + 1))));
        break;
      case 'h':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, t.content.c_str());
        break;
      default:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(t.content.size()));
    }
    archive_write_header(a, e);
    if (t.type == 'f' && !t.content.empty()) {
      archive_write_data(a, t.content.data(), t.content.size());
    }
    archive_entry_free(e);
  }
  bool ok = archive_write_close(a) == ARCHIVE_OK;
  archive_write_free(a);
  return ok;
}

}  // namespace kernelet::testing
