#include "sys/fileio.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

namespace kernelet {

Result<UniqueFd> openDir(const std::string& path, bool nofollow) {
  int flags = O_PATH | O_DIRECTORY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0);
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    return sysError("open", path);
  }
  return UniqueFd(fd);
}

Result<UniqueFd> openDirAt(int dirfd, const std::string& name, const std::string& shown_path) {
  int fd = ::openat(dirfd, name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return sysError("open", shown_path);
  }
  return UniqueFd(fd);
}

static Result<std::string> readAll(int fd, const std::string& shown_path) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return sysError("read", shown_path);
    }
    if (n == 0) {
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

Result<std::string> readFileAt(int dirfd, const std::string& name, const std::string& shown_path) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    return sysError("open", shown_path);
  }
  return readAll(fd.get(), shown_path);
}

Result<std::string> readFile(const std::string& path) { return readFileAt(AT_FDCWD, path, path); }

Result<void> writeFileAt(int dirfd, const std::string& name, std::string_view content,
                         const std::string& shown_path) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    return sysError("open", shown_path);
  }
  ssize_t n;
  do {
    n = ::write(fd.get(), content.data(), content.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return sysError("write", shown_path);
  }
  if (static_cast<size_t>(n) != content.size()) {
    return makeError("write", shown_path, "short write");
  }
  return {};
}

Result<void> writeFile(const std::string& path, std::string_view content) {
  return writeFileAt(AT_FDCWD, path, content, path);
}

Result<void> writeFileAtomic(const std::string& path, std::string_view content, int mode,
                             Sync sync) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) {
    return sysError("create", tmp);
  }
  auto fail = [&](const char* op) {
    auto err = sysError(op, tmp);
    ::unlink(tmp.c_str());
    return err;
  };
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (sync == Sync::kData && ::fsync(fd.get()) != 0) {
    return fail("fsync");
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail("rename");
  }
  return {};
}

Result<void> syncDir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    return sysError("open", path);
  }
  if (::fsync(fd.get()) != 0) {
    return sysError("fsync", path);
  }
  return {};
}

}  // namespace kernelet
