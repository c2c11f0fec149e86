#pragma once
// Terminals of containers and execs (`process.terminal`, kubectl exec -t).
//
// The child makes the pseudo-terminal itself, inside the container: after it
// entered the container's mount namespace and root, it opens the container's
// /dev/ptmx (so the terminal is one of the container's devpts, /dev/pts/N as
// the process sees it), makes the slave its stdio and controlling terminal,
// and sends the master to the caller over a console socket, as runc and crun
// do with --console-socket: one message whose data is the terminal's name and
// whose SCM_RIGHTS carries the master.
//
// The caller holds the other end of that socket and uses the functions below:
//
//   int sv[2]; socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
//   spec.terminal = true; spec.console_socket_fd = sv[1];
//   spec.console_size = ConsoleSize{24, 80};
//   start(spec) ... close(sv[1]);
//   TRY(ReceivedTerminal t, receiveTerminal(sv[0]));  // t.master, t.name
//   setWindowSize(t.master.get(), {50, 132});          // a resize later on

#include <sys/ioctl.h>
#include <sys/types.h>

#include <string>

#include "isolation/container_spec.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::isolation {

struct ReceivedTerminal {
  UniqueFd master;   // O_CLOEXEC, blocking
  std::string name;  // the child's name for it, e.g. /dev/pts/0
};

// Reads the one message the child sends on its console socket. Blocks unless
// `socket` is non-blocking (then an EAGAIN error means not yet: wait for
// EPOLLIN). End of file - the child failed or died before it sent the
// terminal - and a message without exactly one descriptor are errors.
Result<ReceivedTerminal> receiveTerminal(int socket);

// The window size of a terminal, through its master or its slave (TIOCSWINSZ:
// the foreground process group gets SIGWINCH when it changes). 0 rows or 0
// columns, or more than 65535, are refused naming the parameter.
Result<void> setWindowSize(int terminal_fd, ConsoleSize size);

// Connects to the AF_UNIX stream socket at `path` (`--console-socket PATH`).
Result<UniqueFd> connectConsoleSocket(const std::string& path);

// ---- child side, after clone3: system calls only ---------------------------

struct TerminalPlan {
  bool enabled = false;
  int socket = -1;  // the console socket, at the number the child moved it to
  bool set_size = false;
  winsize size{};
  uid_t owner = 0;  // the slave is chown'ed to the process's user (as runc)
};

// Makes the terminal and sends its master; the slave becomes 0, 1 and 2 and
// the controlling terminal of the calling process, which must be a session
// leader without one (setsid). Closes plan.socket. Returns 0, or an errno
// with *op and *path saying what failed (static strings).
int setUpTerminal(const TerminalPlan& plan, const char** op, const char** path);

}  // namespace kernelet::isolation
