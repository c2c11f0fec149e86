// Exit events from the kernel's proc connector (NETLINK_CONNECTOR,
// CN_IDX_PROC): the only way to learn the exit status of a process that is
// not our child. The event is queued just AFTER the process's pidfd turns
// readable (do_exit calls proc_exit_connector right after exit_notify), so
// runs.c waits a moment for it after the pidfd reads exited; it is lost only
// if the socket overflowed (ENOBUFS), which is why the receive buffer is large.
//
// Only the kernel speaks here: a process with CAP_NET_ADMIN in the host's
// network namespace can send any netlink message to our port, so every
// message whose sender port is not 0 (the kernel's) is dropped unread.
#include <errno.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "holder/holder.h"

#define EVENT_OFFSET (NLMSG_LENGTH(0) + sizeof(struct cn_msg))

// Keeps exits and the subscription's ack (PROC_EVENT_NONE); forks, execs and
// the rest never reach us. BPF_ABS loads are big-endian, hence htonl-like
// constants built from the little- or big-endian layout of `what`.
static int attachFilter(int fd) {
  const uint32_t exit_event = PROC_EVENT_EXIT;
  uint32_t exit_be;
  unsigned char* b = (unsigned char*)&exit_event;
  exit_be = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, EVENT_OFFSET + offsetof(struct proc_event, what)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, exit_be, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROC_EVENT_NONE, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
}

static int sendListen(int fd) {
  struct {
    struct nlmsghdr nl;
    struct cn_msg cn;
    enum proc_cn_mcast_op op;
  } __attribute__((packed)) req;
  memset(&req, 0, sizeof req);
  req.nl.nlmsg_len = sizeof req;
  req.nl.nlmsg_type = NLMSG_DONE;
  req.nl.nlmsg_pid = 0;
  req.cn.id.idx = CN_IDX_PROC;
  req.cn.id.val = CN_VAL_PROC;
  req.cn.len = sizeof(enum proc_cn_mcast_op);
  req.op = PROC_CN_MCAST_LISTEN;
  return send(fd, &req, sizeof req, 0) == (ssize_t)sizeof req ? 0 : -1;
}

// One datagram from the kernel: like recv(MSG_DONTWAIT), but a message sent
// by a process (a forged exit, a forged ack) is dropped and reads as EAGAIN.
static ssize_t recvKernel(int fd, void* buf, size_t len) {
  struct sockaddr_nl from;
  socklen_t from_len = sizeof from;
  memset(&from, 0, sizeof from);
  ssize_t n = recvfrom(fd, buf, len, MSG_DONTWAIT, (struct sockaddr*)&from, &from_len);
  if (n >= 0 && (from_len < sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0)) {
    errno = EAGAIN;  // the next poll or read looks again
    return -2;
  }
  return n;
}

// The kernel acks the subscription with PROC_EVENT_NONE and its error; it is
// multicast, so it only reaches us if the bind joined the group. Bounded wait.
static int awaitAck(int fd) {
  char buf[4096] __attribute__((aligned(NLMSG_ALIGNTO)));
  int64_t deadline = nowNs(CLOCK_MONOTONIC) + 2000000000LL;
  for (;;) {
    int64_t left_ms = (deadline - nowNs(CLOCK_MONOTONIC)) / 1000000;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (left_ms <= 0 || poll(&p, 1, (int)left_ms) <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    ssize_t n = recvKernel(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return -1;
    }
    struct nlmsghdr* h = (struct nlmsghdr*)buf;
    for (size_t len = (size_t)n; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_len < EVENT_OFFSET + sizeof(struct proc_event)) {
        continue;
      }
      const struct proc_event* ev = (const struct proc_event*)((char*)h + EVENT_OFFSET);
      if (ev->what == PROC_EVENT_NONE) {
        errno = (int)ev->event_data.ack.err;
        return ev->event_data.ack.err == 0 ? 0 : -1;
      }
    }
  }
}

int connectorOpen(void) {
  int fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
  if (fd < 0) {
    logMsg("proc connector: socket: %s; exit codes of runs will be lost", strerror(errno));
    return -1;
  }
  // Room for a burst of exits while we serve a client (an event is ~100 bytes
  // with its headers; 4 MiB hold tens of thousands). FORCE needs
  // CAP_NET_ADMIN, which subscribing needs anyway.
  int size = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC, .nl_pid = 0};
  const char* step = NULL;
  if (bind(fd, (struct sockaddr*)&sa, sizeof sa) != 0) {
    step = "bind";
  } else if (attachFilter(fd) != 0) {
    step = "filter";
  } else if (sendListen(fd) != 0) {
    step = "subscribe";
  } else if (awaitAck(fd) != 0) {
    step = "subscribe (ack)";
  }
  if (step != NULL) {
    logMsg("proc connector: %s: %s; exit codes of runs will be lost", step, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

// Every thread's exit, matched by its process (tgid): a process's last
// thread is not always its leader (pthread_exit in main, then a worker's
// exit_group), and the leader's exit is not always the process's (a worker's
// execve kills the old leader and runs on under the same pid). runs.c keeps
// the last event and decides once the pidfd says the whole group is gone.
static void onEvent(const struct proc_event* ev) {
  if (ev->what != PROC_EVENT_EXIT) {
    return;
  }
  // The event's time is CLOCK_MONOTONIC (ktime_get_ns); convert, so an event
  // read late still gets the time the process ended.
  int64_t real = nowNs(CLOCK_REALTIME), mono = nowNs(CLOCK_MONOTONIC);
  int64_t at = (int64_t)ev->timestamp_ns;
  int64_t age = mono - at;
  runsExited(ev->event_data.exit.process_tgid, (int)ev->event_data.exit.exit_code,
             real - (age > 0 ? age : 0), at);
}

void connectorDrain(int fd) {
  if (fd < 0) {
    return;
  }
  char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
  for (;;) {
    ssize_t n = recvKernel(fd, buf, sizeof buf);
    if (n == -2) {
      continue;  // not the kernel's: dropped, read on
    }
    if (n < 0) {
      if (errno == ENOBUFS) {
        // Events were dropped: whatever was lost, no run may take a later
        // event for its own (runs.c), then go on reading.
        runsEventsLost();
        continue;
      }
      if (errno == EINTR) {
        continue;
      }
      return;  // EAGAIN: all read
    }
    struct nlmsghdr* h = (struct nlmsghdr*)buf;
    for (size_t len = (size_t)n; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_len < EVENT_OFFSET + sizeof(struct proc_event)) {
        continue;
      }
      const struct cn_msg* cn = (const struct cn_msg*)NLMSG_DATA(h);
      if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC) {
        continue;
      }
      onEvent((const struct proc_event*)cn->data);
    }
  }
}
