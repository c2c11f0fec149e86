#include "agent/streams/console_socket.h"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace kernelet::agent::streams {

Result<std::optional<UniqueFd>> receiveTerminal(int sock) {
  constexpr int kMaxFds = 4;  // runc sends one; more are closed, never leaked
  std::array<char, 4096> name{};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * kMaxFds)> control{};
  iovec iov{.iov_base = name.data(), .iov_len = name.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      return std::optional<UniqueFd>();
    }
    return sysError("recvmsg", "console socket");
  }
  UniqueFd master;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
      continue;
    }
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      UniqueFd owned(fd);
      if (!master) {
        master = std::move(owned);
      }
    }
  }
  if (master) {
    return std::optional<UniqueFd>(std::move(master));
  }
  if (n == 0) {
    return makeError("recvmsg", "console socket", "closed without sending the terminal");
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    return makeError("recvmsg", "console socket", "control data truncated");
  }
  return makeError("recvmsg", "console socket", "a message without the terminal's descriptor");
}

}  // namespace kernelet::agent::streams
