// CRI log files (isolation/cri_log.h) as `kernelet logs` reads them
// (agent/app/pods_cli.h), and what a container prints, written and read back: the
// reader must show exactly the container's output (a last line without a
// newline gets one, as when the stream closes; "\r\n" becomes "\n").

#include "isolation/cri_log.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/app/pods_cli.h"
#include "sys/unique_fd.h"

namespace iso = kernelet::isolation;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)kernelet::agent::criLogMessages(std::string(text));

  int fd = ::memfd_create("fuzz-cri-log", MFD_CLOEXEC);
  if (fd < 0) {
    __builtin_trap();
  }
  iso::CriLogWriter writer{kernelet::UniqueFd(::dup(fd))};
  // Pieces as a pipe would hand them over: 1, 2, 3, ... bytes, and stderr gets
  // nothing, so the file's messages are stdout's bytes.
  for (size_t at = 0, n = 1; at < text.size(); at += n, n = n % 4093 + 1) {
    if (!writer.feed(iso::Stream::kStdout, text.substr(at, n))) {
      __builtin_trap();
    }
  }
  if (!writer.close(iso::Stream::kStdout)) {
    __builtin_trap();
  }
  std::string file(static_cast<size_t>(::lseek(fd, 0, SEEK_END)), '\0');
  if (::pread(fd, file.data(), file.size(), 0) != static_cast<ssize_t>(file.size())) {
    __builtin_trap();
  }
  ::close(fd);
  // Each line as containerd logs it: "\r\n" ends a line like "\n", unless the
  // "\r" went out as the last byte of a full 16 KiB partial piece.
  std::string expected;
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    bool last = nl == std::string_view::npos;
    std::string_view line = text.substr(at, last ? std::string_view::npos : nl - at);
    if (!last && line.ends_with('\r') && line.size() % iso::CriLogWriter::kMaxLine != 0) {
      line.remove_suffix(1);
    }
    expected.append(line);
    expected += '\n';
    at = last ? text.size() : nl + 1;
  }
  if (kernelet::agent::criLogMessages(file) != expected) {
    __builtin_trap();  // the log shows something else than the container printed
  }
  return 0;
}
