#pragma once
// Blobs named by their sha256 under ROOT/blobs/sha256/<hex>. Every blob is
// verified before it gets its name, and written atomically (temp file, fsync,
// rename), so a crash or a bad download never leaves a half blob that looks whole.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sys/result.h"

namespace kernelet::images {

class ContentStore {
 public:
  static Result<ContentStore> open(const std::string& root);

  bool has(const std::string& digest) const;
  std::string path(const std::string& digest) const;

  // Stores `data` if its digest is `expected` (and `size` matches, when >= 0).
  Result<void> put(const std::string& expected, std::string_view data, int64_t size = -1);
  // Copies the file at `src` in, verifying it while copying.
  Result<void> putFile(const std::string& expected, const std::string& src, int64_t size = -1);
  Result<std::string> read(const std::string& digest) const;
  Result<void> remove(const std::string& digest);

  // A writer for streamed content (downloads): write() pieces, then commit()
  // checks the digest and renames; anything else discards the temp file.
  class Writer {
   public:
    Writer(Writer&&) noexcept;
    ~Writer();
    Result<void> write(std::string_view piece);
    Result<void> commit(const std::string& expected, int64_t size = -1);

   private:
    friend class ContentStore;
    Writer(const ContentStore* store, int fd, std::string tmp);
    struct State;
    std::unique_ptr<State> s_;
  };
  Result<Writer> writer() const;

  const std::string& root() const { return root_; }

 private:
  explicit ContentStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace kernelet::images
