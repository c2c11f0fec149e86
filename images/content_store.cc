#include "images/content_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>

#include "images/digest.h"
#include "sys/fileio.h"
#include "sys/unique_fd.h"

namespace kernelet::images {

namespace fs = std::filesystem;

struct ContentStore::Writer::State {
  const ContentStore* store;
  UniqueFd fd;
  std::string tmp;
  Sha256 hash;
  int64_t size = 0;
  bool done = false;
};

ContentStore::Writer::Writer(const ContentStore* store, int fd, std::string tmp)
    : s_(std::make_unique<State>(State{store, UniqueFd(fd), std::move(tmp), {}, 0, false})) {}
ContentStore::Writer::Writer(Writer&&) noexcept = default;
ContentStore::Writer::~Writer() {
  if (s_ && !s_->done) {
    ::unlink(s_->tmp.c_str());
  }
}

Result<void> ContentStore::Writer::write(std::string_view piece) {
  s_->hash.update(piece);
  s_->size += static_cast<int64_t>(piece.size());
  while (!piece.empty()) {
    ssize_t n = ::write(s_->fd.get(), piece.data(), piece.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return sysError("write", s_->tmp);
    }
    piece.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<void> ContentStore::Writer::commit(const std::string& expected, int64_t size) {
  TRY_VOID(validateDigest(expected));
  std::string got = s_->hash.digest();
  if (got != expected) {
    return makeError("verify blob", expected, "content has digest " + got);
  }
  if (size >= 0 && size != s_->size) {
    return makeError("verify blob", expected,
                     "size " + std::to_string(s_->size) + ", expected " + std::to_string(size));
  }
  if (::fsync(s_->fd.get()) != 0) {
    return sysError("fsync", s_->tmp);
  }
  s_->fd.reset();
  std::string dest = s_->store->path(expected);
  if (::rename(s_->tmp.c_str(), dest.c_str()) != 0) {
    return sysError("rename", dest);
  }
  s_->done = true;
  return {};
}

Result<ContentStore> ContentStore::open(const std::string& root) {
  std::error_code ec;
  fs::create_directories(root + "/blobs/sha256", ec);
  fs::create_directories(root + "/ingest", ec);
  if (ec) {
    return makeError("create content store", root, ec.message());
  }
  return ContentStore(root);
}

bool ContentStore::has(const std::string& digest) const {
  return validateDigest(digest) && ::access(path(digest).c_str(), F_OK) == 0;
}

std::string ContentStore::path(const std::string& digest) const {
  return root_ + "/blobs/sha256/" + digestHex(digest);
}

Result<ContentStore::Writer> ContentStore::writer() const {
  static std::atomic<uint64_t> seq{0};
  std::string tmp = root_ + "/ingest/" + std::to_string(::getpid()) + "-" + std::to_string(seq++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return sysError("create", tmp);
  }
  return Writer(this, fd, tmp);
}

Result<void> ContentStore::put(const std::string& expected, std::string_view data, int64_t size) {
  TRY_VOID(validateDigest(expected));
  if (has(expected)) {
    return {};
  }
  TRY(Writer w, writer());
  TRY_VOID(w.write(data));
  return w.commit(expected, size);
}

Result<void> ContentStore::putFile(const std::string& expected, const std::string& src,
                                   int64_t size) {
  TRY_VOID(validateDigest(expected));
  if (has(expected)) {
    return {};
  }
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) {
    return sysError("open", src);
  }
  TRY(Writer w, writer());
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return sysError("read", src);
    }
    if (n == 0) {
      break;
    }
    TRY_VOID(w.write(std::string_view(buf, static_cast<size_t>(n))));
  }
  return addContext(w.commit(expected, size), src);
}

Result<std::string> ContentStore::read(const std::string& digest) const {
  TRY_VOID(validateDigest(digest));
  return readFile(path(digest));
}

Result<void> ContentStore::remove(const std::string& digest) {
  TRY_VOID(validateDigest(digest));
  if (::unlink(path(digest).c_str()) != 0 && errno != ENOENT) {
    return sysError("remove blob", path(digest));
  }
  return {};
}

}  // namespace kernelet::images
