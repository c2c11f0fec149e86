// kernelet-holder: the node's one keeper of what must outlive the agent
// (protocol.h, README "Live restore"). One process, one thread, libc only.
//
//   kernelet-holder [--ready-fd N] [--ended-ttl SECONDS] SOCKET
//
// SOCKET's directory (RUN_DIR/holder/ on a node) is ours alone: made 0700 if
// missing, refused if it is a symlink or someone else's, its mode tightened
// to 0700 if looser. Holds SOCKET.lock (flock) for its whole life, so a
// second holder on the same socket refuses to start (exit 2); only under that
// lock is a stale SOCKET file replaced. Writes one byte to fd N once it
// serves, then closes it.
#include "holder/holder.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 16
#define SWEEP_MS 60000
// Out of fds (EMFILE, ENFILE): stop accepting for this long instead of
// spinning on a listening socket that stays readable.
#define ACCEPT_PAUSE_MS 200
// fds the holder needs besides the kept ones: its sockets, clients, /proc
// files it opens, the fds of one request in flight.
#define OWN_FDS 64

int g_epoll = -1;
static int g_clients[MAX_CLIENTS];
static int64_t g_accept_paused_until;  // CLOCK_MONOTONIC ns; 0: accepting

int64_t nowNs(int clock) {
  struct timespec t;
  (void)clock_gettime(clock, &t);  // a valid clock and pointer: cannot fail
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

void logMsg(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  (void)vsnprintf(buf, sizeof buf, fmt, ap);  // truncated at worst
  va_end(ap);
  dprintf(2, "kernelet-holder[%d]: %s\n", (int)getpid(), buf);
}

static void addFd(int fd, uint32_t tag, uint32_t index) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)tag << 32 | index};
  if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, fd, &ev) != 0) {
    logMsg("epoll_ctl: %s", strerror(errno));
    exit(1);
  }
}

// What a holder does for itself: survive the OOM killer like the agent
// (-999, the kubelet's own score), outlive its clients' sockets, and have
// room for KH_MAX_FDS kept fds.
static void protectSelf(void) {
  (void)signal(SIGPIPE, SIG_IGN);  // valid signals: cannot fail
  (void)signal(SIGHUP, SIG_IGN);
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, "-999", 4) != 4) {
    logMsg("oom_score_adj -999: %s (going on)", strerror(errno));
  }
  if (fd >= 0) {
    close(fd);
  }
  // No core dump, no ptrace by other users, /proc/self/* owned by root: what
  // we hold (every container's log pipes and pidfds) is not for others.
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    logMsg("PR_SET_DUMPABLE 0: %s (going on)", strerror(errno));
  }
  // Room for every fd we may keep: a holder that runs out mid-KEEP fails
  // runs at random, so one that cannot have the room refuses to start. Root
  // may raise its hard limit (CAP_SYS_RESOURCE; the kernel's default for
  // init is 4096, too few); without that right the hard limit must suffice.
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    logMsg("getrlimit RLIMIT_NOFILE: %s", strerror(errno));
    exit(1);
  }
  if (rl.rlim_cur >= KH_MAX_FDS + OWN_FDS) {
    return;
  }
  rlim_t hard = rl.rlim_max;
  rl.rlim_cur = KH_MAX_FDS + OWN_FDS;
  rl.rlim_max = hard > rl.rlim_cur ? hard : rl.rlim_cur;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    logMsg(
        "RLIMIT_NOFILE: the hard limit %llu is below the %d fds a holder needs (%d kept + %d "
        "own) and cannot be raised (%s): not starting (raise LimitNOFILE of the agent's "
        "service)",
        (unsigned long long)hard, KH_MAX_FDS + OWN_FDS, KH_MAX_FDS, OWN_FDS, strerror(errno));
    exit(1);
  }
}

// SOCKET's directory: created 0700 when missing; when it exists, a directory
// (not a symlink) owned by us (root on a node), its mode tightened to 0700.
// Who can enter it can connect to the socket and act on every kept run.
static void ownDirectory(const char* path) {
  char copy[sizeof(((struct sockaddr_un*)0)->sun_path)];
  (void)snprintf(copy, sizeof copy, "%s", path);  // the caller checked its length
  const char* dir = dirname(copy);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    logMsg("mkdir %s: %s", dir, strerror(errno));
    exit(1);
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    logMsg("open %s: %s (a symlink is refused)", dir, strerror(errno));
    exit(1);
  }
  if (st.st_uid != geteuid()) {
    logMsg("%s is owned by uid %u, not by us (uid %u): not starting", dir, (unsigned)st.st_uid,
           (unsigned)geteuid());
    exit(1);
  }
  if ((st.st_mode & 077) != 0 && fchmod(fd, 0700) != 0) {
    logMsg("chmod 0700 %s: %s", dir, strerror(errno));
    exit(1);
  }
  close(fd);
}

// The lock, then the socket: a stale socket file (a dead holder's) is
// replaced only by the holder that owns the lock.
static int listenOn(const char* path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    logMsg("socket path too long: %s", path);
    exit(1);
  }
  strcpy(sa.sun_path, path);
  ownDirectory(path);
  char lock[sizeof sa.sun_path + 8];
  (void)snprintf(lock, sizeof lock, "%s.lock", path);  // sized for it
  int lock_fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (lock_fd < 0) {
    logMsg("open %s: %s", lock, strerror(errno));
    exit(1);
  }
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    logMsg("another holder holds %s (%s): not starting", lock, strerror(errno));
    exit(2);
  }
  // lock_fd stays open (and locked) until we exit.
  if (unlink(path) != 0 && errno != ENOENT) {
    logMsg("remove stale %s: %s", path, strerror(errno));
    exit(1);
  }
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  mode_t old = umask(0077);  // only root (our user) may connect
  int bound = fd >= 0 ? bind(fd, (struct sockaddr*)&sa, sizeof sa) : -1;
  umask(old);
  if (bound != 0 || listen(fd, MAX_CLIENTS) != 0) {
    logMsg("listen on %s: %s", path, strerror(errno));
    exit(1);
  }
  return fd;
}

static void acceptClient(int listen_fd) {
  int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
    // The connection stays queued; the listening socket stays readable, so
    // stop watching it a while (serve() resumes) rather than spin.
    logMsg("accept: %s: pausing %d ms", strerror(errno), ACCEPT_PAUSE_MS);
    (void)epoll_ctl(g_epoll, EPOLL_CTL_DEL, listen_fd, NULL);
    g_accept_paused_until = nowNs(CLOCK_MONOTONIC) + (int64_t)ACCEPT_PAUSE_MS * 1000000;
    return;
  }
  if (fd < 0) {
    return;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      (cred.uid != 0 && cred.uid != geteuid())) {
    close(fd);  // the socket's mode already keeps others out; belt and braces
    return;
  }
  for (uint32_t i = 0; i < MAX_CLIENTS; i++) {
    if (g_clients[i] < 0) {
      g_clients[i] = fd;
      addFd(fd, TAG_CLIENT, i);
      return;
    }
  }
  logMsg("more than %d clients: refusing one", MAX_CLIENTS);
  close(fd);
}

static void dropClient(uint32_t i) {
  (void)epoll_ctl(g_epoll, EPOLL_CTL_DEL, g_clients[i], NULL);
  close(g_clients[i]);
  g_clients[i] = -1;
}

// Sends `reply` with `fds` (ours, duplicated into the peer by the kernel).
static int sendReply(int fd, const struct kh_msg* reply, const int* fds, int nfds) {
  uint8_t buf[KH_MAX_MSG];
  size_t len = kh_encode(reply, buf, sizeof buf);
  if (len == 0) {
    return -1;
  }
  struct iovec iov = {.iov_base = buf, .iov_len = len};
  char cbuf[CMSG_SPACE(sizeof(int) * (1 + KH_MAX_RUN_FDS))] __attribute__((aligned(8)));
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    memset(cbuf, 0, sizeof cbuf);
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  return sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len ? 0 : -1;
}

// The fds of a received message (closed by the caller), at most `cap`; -1
// when more came than fit (all closed here).
static int takeFds(struct msghdr* mh, int* fds, int cap) {
  int n = 0, over = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
      continue;
    }
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t k = 0; k < count; k++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
      if (n < cap) {
        fds[n++] = fd;
      } else {
        close(fd);
        over = 1;
      }
    }
  }
  if (over || (mh->msg_flags & MSG_CTRUNC) != 0) {
    for (int k = 0; k < n; k++) {
      close(fds[k]);
    }
    return -1;
  }
  return n;
}

static void serveClient(uint32_t i) {
  int fd = g_clients[i];
  uint8_t buf[KH_MAX_MSG + 1];
  char cbuf[CMSG_SPACE(sizeof(int) * (1 + KH_MAX_RUN_FDS))] __attribute__((aligned(8)));
  struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
  struct msghdr mh = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    return;
  }
  if (n <= 0) {
    dropClient(i);  // the client is gone (or broke): its runs stay kept
    return;
  }
  int fds[1 + KH_MAX_RUN_FDS];
  int nfds = takeFds(&mh, fds, 1 + KH_MAX_RUN_FDS);
  struct kh_msg req, reply;
  int err = nfds < 0 || (mh.msg_flags & MSG_TRUNC) != 0 ? -EBADMSG : kh_parse(buf, (size_t)n, &req);
  int out_fds[1 + KH_MAX_RUN_FDS], out_nfds = 0;
  static uint8_t list_buf[KH_MAX_MSG];
  if (err != 0) {
    for (int k = 0; k < nfds; k++) {
      close(fds[k]);
    }
    uint32_t seq = 0;
    if (n >= KH_HEADER) {
      memcpy(&seq, buf + 4, sizeof seq);
    }
    memset(&reply, 0, sizeof reply);
    reply.type = KH_ERROR;
    reply.seq = seq;
    reply.errnum = -err;
  } else {
    runsServe(&req, fds, nfds, &reply, list_buf, sizeof list_buf - 64, out_fds, &out_nfds);
  }
  if (sendReply(fd, &reply, out_fds, out_nfds) != 0) {
    dropClient(i);  // a client that cannot take a reply is not waiting for one
  }
}

// Milliseconds until the next timed step: the sweep, a run's exit to settle,
// or accepting again.
static int waitMs(int listen_fd) {
  int64_t now = nowNs(CLOCK_MONOTONIC), next = runsSettle();
  if (g_accept_paused_until != 0 && g_accept_paused_until <= now) {
    g_accept_paused_until = 0;
    addFd(listen_fd, TAG_LISTEN, 0);
  }
  if (g_accept_paused_until != 0 && (next == 0 || g_accept_paused_until < next)) {
    next = g_accept_paused_until;
  }
  int64_t left = next == 0 ? SWEEP_MS : (next - now) / 1000000 + 1;
  return left < SWEEP_MS ? (int)left : SWEEP_MS;
}

static void serve(int listen_fd, int connector_fd) {
  for (;;) {
    struct epoll_event evs[32];
    int n = epoll_wait(g_epoll, evs, 32, waitMs(listen_fd));
    if (n < 0 && errno != EINTR) {
      logMsg("epoll_wait: %s", strerror(errno));
      exit(1);
    }
    runsSweep();  // first: a request never sees a run past its time
    for (int k = 0; k < n; k++) {
      uint32_t tag = (uint32_t)(evs[k].data.u64 >> 32), index = (uint32_t)evs[k].data.u64;
      if (tag == TAG_LISTEN) {
        acceptClient(listen_fd);
      } else if (tag == TAG_CONNECTOR) {
        connectorDrain(connector_fd);
      } else if (tag == TAG_CLIENT && g_clients[index] >= 0) {
        serveClient(index);
      } else if (tag == TAG_RUN) {
        runsPidfdReady(index);
      }
    }
  }
}

static void usage(void) {
  dprintf(2, "usage: kernelet-holder [--ready-fd N] [--ended-ttl SECONDS] SOCKET\n");
  exit(1);
}

int main(int argc, char** argv) {
  int ready_fd = -1;
  int64_t ttl_s = (int64_t)24 * 3600;
  const char* path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--ready-fd") == 0 && i + 1 < argc) {
      ready_fd = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--ended-ttl") == 0 && i + 1 < argc) {
      ttl_s = atoll(argv[++i]);
    } else if (argv[i][0] != '-' && path == NULL) {
      path = argv[i];
    } else {
      usage();
    }
  }
  if (path == NULL || ttl_s <= 0) {
    usage();
  }
  for (int i = 0; i < MAX_CLIENTS; i++) {
    g_clients[i] = -1;
  }
  protectSelf();
  int listen_fd = listenOn(path);
  g_epoll = epoll_create1(EPOLL_CLOEXEC);
  int connector_fd = connectorOpen();
  runsInit(connector_fd, ttl_s * 1000000000LL);
  addFd(listen_fd, TAG_LISTEN, 0);
  if (connector_fd >= 0) {
    addFd(connector_fd, TAG_CONNECTOR, 0);
  }
  if (ready_fd >= 0) {
    (void)!write(ready_fd, "1", 1);  // the starter learns we serve; it may be gone
    close(ready_fd);
  }
  serve(listen_fd, connector_fd);
  return 0;
}
