// Terminals: the child's side (made in the container, after clone3: system
// calls only, no allocation) and the caller's (receive the master, resize it).
#include "isolation/terminal.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace kernelet::isolation {

namespace {

// TIOCGPTPEER (Linux 4.13): the slave opened from the master, with no path
// lookup a container could redirect.
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

// The child is a single-threaded copy of its parent: a static buffer is its
// own. Holds "/dev/pts/N" of the terminal being set up, for the message to
// the console socket and for error reports.
char g_name[32];

void setPtsName(unsigned n) {
  char digits[12];
  int len = 0;
  do {
    digits[len++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n > 0);
  std::memcpy(g_name, "/dev/pts/", 9);
  int i = 9;
  while (len > 0) {
    g_name[i++] = digits[--len];
  }
  g_name[i] = '\0';
}

// Opens a master through `ptmx` and its slave. The terminal must belong to
// the devpts mounted at /dev/pts, so that the name the process sees (tty,
// /proc/self/fd/0) is the terminal it has. 0 or an errno.
int openPair(const char* ptmx, int* master, int* slave, const char** op, const char** path) {
  *path = ptmx;
  // Non-blocking open: a FIFO or device an image put there cannot hold the
  // child; the master itself is handed over blocking, as runc's is.
  int m = ::open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (m < 0) {
    *op = "open pty master";
    return errno;
  }
  int err = 0;
  unsigned n = 0;
  int unlock = 0;
  int s = -1;
  struct stat slave_st {};
  struct stat pts_st {};
  int flags = ::fcntl(m, F_GETFL);
  if (flags < 0 || ::fcntl(m, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    *op = "fcntl pty master";
  } else if (::ioctl(m, TIOCGPTN, &n) != 0) {
    *op = "open pty master (not a pty multiplexer)";
  } else if (::ioctl(m, TIOCSPTLCK, &unlock) != 0) {
    *op = "unlock pty";
  } else {
    setPtsName(n);
    s = ::ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0 && (errno == EINVAL || errno == ENOTTY)) {
      s = ::open(g_name, O_RDWR | O_NOCTTY | O_CLOEXEC);  // a kernel before 4.13
    }
    if (s < 0) {
      *op = "open pty slave";
      *path = g_name;
    } else if (::fstat(s, &slave_st) != 0 || ::stat("/dev/pts", &pts_st) != 0) {
      *op = "stat pty slave and /dev/pts";
      *path = g_name;
    } else if (slave_st.st_dev != pts_st.st_dev) {
      errno = EXDEV;
      *op = "open pty master (its terminal is not of the devpts at /dev/pts)";
    } else {
      *master = m;
      *slave = s;
      return 0;
    }
  }
  err = errno != 0 ? errno : EIO;  // a failure is never read as success
  if (s >= 0) {
    ::close(s);
  }
  ::close(m);
  return err;
}

// One message: the terminal's name as data, the master as SCM_RIGHTS.
int sendMaster(int socket, int master) {
  iovec iov{g_name, std::strlen(g_name)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &master, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? errno : 0;
}

}  // namespace

int setUpTerminal(const TerminalPlan& plan, const char** op, const char** path) {
  // The container's /dev/ptmx (a link to pts/ptmx, or a ptmx device node that
  // the kernel resolves to the devpts beside it), else the devpts' own.
  int master = -1;
  int slave = -1;
  int err = openPair("/dev/ptmx", &master, &slave, op, path);
  if (err != 0) {
    err = openPair("/dev/pts/ptmx", &master, &slave, op, path);
  }
  if (err != 0) {
    return err;
  }
  *path = g_name;
  if (plan.set_size && ::ioctl(slave, TIOCSWINSZ, &plan.size) != 0) {
    *op = "set terminal size (TIOCSWINSZ)";
  } else if (plan.owner != 0 && ::fchown(slave, plan.owner, static_cast<gid_t>(-1)) != 0) {
    // The process's user owns its terminal (runc's fixStdioPermissions), so
    // it can reopen it (/dev/tty) once it is no longer root.
    *op = "chown terminal";
  } else if (int e = sendMaster(plan.socket, master); e != 0) {
    errno = e;
    *op = "send terminal to the console socket";
  } else {
    // Neither the master nor the socket may reach the container.
    ::close(master);
    master = -1;
    ::close(plan.socket);
    if (::ioctl(slave, TIOCSCTTY, 0) != 0) {
      *op = "make controlling terminal (TIOCSCTTY)";
    } else {
      for (int fd = 0; fd < 3; fd++) {
        if (::dup2(slave, fd) < 0) {
          *op = "dup2 terminal";
          return errno;
        }
      }
      if (slave > 2) {
        ::close(slave);
      }
      return 0;
    }
  }
  err = errno != 0 ? errno : EIO;
  if (master >= 0) {
    ::close(master);
  }
  ::close(slave);
  return err;
}

Result<ReceivedTerminal> receiveTerminal(int socket) {
  char name[256];
  iovec iov{name, sizeof name};
  // Room for more than one descriptor, so that extra ones are received (and
  // closed) rather than left to truncate the message.
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return sysError("receive terminal", "console socket");
  }
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
      continue;
    }
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.emplace_back(fd);
    }
  }
  if (n == 0 && fds.empty()) {
    return makeError("receive terminal", "console socket",
                     "closed before a terminal was sent: the process failed or died in setup");
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || fds.size() != 1) {
    return makeError("receive terminal", "console socket",
                     "expected one descriptor, got " + std::to_string(fds.size()) +
                         ((msg.msg_flags & MSG_CTRUNC) != 0 ? " and more" : ""));
  }
  unsigned pty = 0;
  if (::ioctl(fds[0].get(), TIOCGPTN, &pty) != 0) {
    return makeError("receive terminal", "console socket",
                     "the descriptor received is not a pseudo-terminal master");
  }
  return ReceivedTerminal{std::move(fds[0]), std::string(name, static_cast<size_t>(n))};
}

Result<void> setWindowSize(int terminal_fd, ConsoleSize size) {
  if (size.rows == 0 || size.rows > 65535) {
    return makeError("set window size", "rows",
                     "must be in [1, 65535], got " + std::to_string(size.rows));
  }
  if (size.cols == 0 || size.cols > 65535) {
    return makeError("set window size", "cols",
                     "must be in [1, 65535], got " + std::to_string(size.cols));
  }
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(size.rows);
  ws.ws_col = static_cast<unsigned short>(size.cols);
  if (::ioctl(terminal_fd, TIOCSWINSZ, &ws) != 0) {
    return sysError("set window size (TIOCSWINSZ)", "terminal");
  }
  return {};
}

Result<UniqueFd> connectConsoleSocket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return makeError(
        "console socket", path,
        "the path must be 1 to " + std::to_string(sizeof addr.sun_path - 1) + " bytes long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return sysError("socket", path);
  }
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    return sysError("connect console socket", path);
  }
  return fd;
}

}  // namespace kernelet::isolation
