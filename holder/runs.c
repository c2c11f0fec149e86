// The runs the holder keeps and the requests about them (protocol.h). A run
// is a container process named by its pidfd, the read ends of its log pipes
// (held so that the container's writes wait in the pipe instead of failing
// with EPIPE while no agent is there) and, once it ended, its wait status.
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "holder/holder.h"

struct Run {
  int used;
  char id[KH_MAX_ID + 1];
  uint16_t id_len;
  pid_t pid;
  uint64_t start_time;
  int pidfd;
  int fds[KH_MAX_RUN_FDS];
  int nfds;
  int state;  // enum kh_state
  int wait_status;
  int64_t finished_ns;
  int64_t touched_ns;  // CLOCK_BOOTTIME: when it ended or was last fetched
};

static struct Run g_runs[KH_MAX_RUNS];
static int g_held_fds;
static int g_connector = -1;
static int64_t g_ttl_ns;

void runsInit(int connector_fd, int64_t ended_ttl_ns) {
  g_connector = connector_fd;
  g_ttl_ns = ended_ttl_ns;
}

int runsSeeExits(void) { return g_connector >= 0; }

static struct Run* findRun(const char* id) {
  for (size_t i = 0; i < KH_MAX_RUNS; i++) {
    if (g_runs[i].used && strcmp(g_runs[i].id, id) == 0) {
      return &g_runs[i];
    }
  }
  return NULL;
}

static void unwatch(struct Run* r) { (void)epoll_ctl(g_epoll, EPOLL_CTL_DEL, r->pidfd, NULL); }

static void closeRun(struct Run* r) {
  unwatch(r);
  close(r->pidfd);
  for (int i = 0; i < r->nfds; i++) {
    close(r->fds[i]);
  }
  g_held_fds -= 1 + r->nfds;
  memset(r, 0, sizeof *r);
}

void runsExited(pid_t pid, int wait_status, int64_t finished_ns) {
  for (size_t i = 0; i < KH_MAX_RUNS; i++) {
    struct Run* r = &g_runs[i];
    // The first exit of the pid since KEEP: a later one is a reused pid's.
    if (r->used && r->pid == pid && r->state == KH_RUNNING) {
      r->state = KH_EXITED;
      r->wait_status = wait_status;
      r->finished_ns = finished_ns;
      r->touched_ns = nowNs(CLOCK_BOOTTIME);
      unwatch(r);
    }
  }
}

static int pidfdExited(int pidfd) {
  struct pollfd p = {.fd = pidfd, .events = POLLIN};
  return poll(&p, 1, 0) > 0;
}

// Brings the run's state up to date: its exit event, if any, was queued
// before its pidfd turned readable, so drain first and call it lost only if
// the pidfd read exited BEFORE the drain and still no event came.
static void refresh(struct Run* r) {
  if (r->state != KH_RUNNING) {
    return;
  }
  int exited = pidfdExited(r->pidfd);
  connectorDrain(g_connector);
  if (exited && r->state == KH_RUNNING) {
    r->state = KH_EXIT_LOST;
    r->touched_ns = nowNs(CLOCK_BOOTTIME);
    unwatch(r);
  }
}

void runsPidfdReady(size_t slot) {
  if (slot < KH_MAX_RUNS && g_runs[slot].used) {
    refresh(&g_runs[slot]);
  }
}

void runsSweep(void) {
  int64_t now = nowNs(CLOCK_BOOTTIME);
  for (size_t i = 0; i < KH_MAX_RUNS; i++) {
    struct Run* r = &g_runs[i];
    if (r->used && r->state != KH_RUNNING && now - r->touched_ns > g_ttl_ns) {
      logMsg("dropping run %s (pid %d): ended and not fetched", r->id, (int)r->pid);
      closeRun(r);
    }
  }
}

// The pid a pidfd names, from /proc/self/fdinfo: 0 when `fd` is no pidfd, -1
// when its process is gone (reaped).
static int pidfdPid(int fd) {
  char path[64], buf[1024];
  (void)snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);  // fits
  FILE* f = fopen(path, "re");
  if (f == NULL) {
    return 0;
  }
  int pid = 0;
  while (fgets(buf, sizeof buf, f) != NULL) {
    if (strncmp(buf, "Pid:", 4) == 0) {
      pid = atoi(buf + 4);
      break;
    }
  }
  (void)fclose(f);  // read-only
  return pid;
}

// Field 22 of /proc/PID/stat (after the parenthesised name, which may hold
// anything), or 0 when unreadable.
static uint64_t startTime(pid_t pid) {
  char path[64], buf[1024];
  (void)snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);  // fits
  FILE* f = fopen(path, "re");
  if (f == NULL) {
    return 0;
  }
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  (void)fclose(f);  // read-only
  buf[n] = '\0';
  char* p = strrchr(buf, ')');
  if (p == NULL) {
    return 0;
  }
  // p is the space before field 3; step to the one before field 22.
  p++;
  for (int field = 3; field < 22; field++) {
    p = strchr(p + 1, ' ');
    if (p == NULL) {
      return 0;
    }
  }
  return strtoull(p + 1, NULL, 10);
}

// Checks the fds of a KEEP: a pidfd of `pid` (or of a process already gone)
// whose start time is the one given. 0 or an errno.
static int checkKeep(const struct kh_msg* req, int* fds, int nfds) {
  if (nfds < 1 || nfds > 1 + KH_MAX_RUN_FDS || req->pid <= 0) {
    return EBADMSG;
  }
  int named = pidfdPid(fds[0]);
  if (named == 0) {
    return EBADMSG;
  }
  if (named > 0 && named != req->pid) {
    return ESRCH;
  }
  if (named > 0 && req->start_time != 0 && startTime(req->pid) != req->start_time) {
    return ESRCH;
  }
  return 0;
}

static struct Run* freeSlot(void) {
  for (size_t i = 0; i < KH_MAX_RUNS; i++) {
    if (!g_runs[i].used) {
      return &g_runs[i];
    }
  }
  return NULL;
}

// KEEP: takes the fds on success (0), leaves them to the caller otherwise.
static int keep(const struct kh_msg* req, int* fds, int nfds) {
  int err = checkKeep(req, fds, nfds);
  if (err != 0) {
    return err;
  }
  struct Run* old = findRun(req->id);
  int same = old != NULL && old->pid == req->pid && old->start_time == req->start_time;
  int freed = old != NULL ? 1 + old->nfds : 0;
  if (g_held_fds - freed + nfds > KH_MAX_FDS || (old == NULL && freeSlot() == NULL)) {
    return ENOSPC;
  }
  // Events still queued from before this KEEP belong to earlier owners of
  // the pid: match them now, before the run is in the table.
  connectorDrain(g_connector);
  struct Run kept = {0};
  if (same) {
    kept = *old;  // the same process again (an agent re-keeping): its exit stays
    kept.pidfd = -1;
    kept.nfds = 0;
  }
  struct Run* r = old != NULL ? old : freeSlot();
  if (old != NULL) {
    closeRun(old);
  }
  *r = kept;
  r->used = 1;
  memcpy(r->id, req->id, (size_t)req->id_len + 1);
  r->id_len = req->id_len;
  r->pid = req->pid;
  r->start_time = req->start_time;
  r->pidfd = fds[0];
  r->nfds = nfds - 1;
  memcpy(r->fds, fds + 1, sizeof(int) * (size_t)(nfds - 1));
  g_held_fds += nfds;
  if (r->state == KH_RUNNING) {
    struct epoll_event ev = {.events = EPOLLIN,
                             .data.u64 = (uint64_t)TAG_RUN << 32 | (uint64_t)(r - g_runs)};
    (void)epoll_ctl(g_epoll, EPOLL_CTL_ADD, r->pidfd, &ev);  // else refresh() on FETCH finds it
    refresh(r);
  }
  return 0;
}

static void fetch(const struct kh_msg* req, struct kh_msg* reply, int* out_fds, int* out_nfds) {
  struct Run* r = findRun(req->id);
  if (r == NULL) {
    reply->type = KH_ERROR;
    reply->errnum = ENOENT;
    return;
  }
  refresh(r);
  if (r->state != KH_RUNNING) {
    r->touched_ns = nowNs(CLOCK_BOOTTIME);
  }
  reply->state = (uint8_t)r->state;
  reply->wait_status = r->wait_status;
  reply->finished_ns = r->finished_ns;
  out_fds[0] = r->pidfd;
  memcpy(out_fds + 1, r->fds, sizeof(int) * (size_t)r->nfds);
  *out_nfds = 1 + r->nfds;
  reply->nfds = (uint8_t)*out_nfds;
}

static void list(const struct kh_msg* req, struct kh_msg* reply, uint8_t* buf, size_t cap) {
  uint32_t total = 0, next = req->from;
  size_t len = 0;
  int full = 0;
  for (size_t i = 0; i < KH_MAX_RUNS; i++) {
    if (!g_runs[i].used) {
      continue;
    }
    if (total++ < req->from || full) {
      continue;
    }
    if (kh_list_append(buf, cap, &len, g_runs[i].id, g_runs[i].id_len) != 0) {
      full = 1;
      continue;
    }
    reply->count++;
    next++;
  }
  reply->total = total;
  reply->next = next < total ? next : total;
  reply->list = buf;
  reply->list_len = len;
}

void runsServe(const struct kh_msg* req, int* fds, int nfds, struct kh_msg* reply,
               uint8_t* list_buf, size_t list_cap, int* out_fds, int* out_nfds) {
  memset(reply, 0, sizeof *reply);
  reply->type = (uint16_t)(req->type | KH_REPLY);
  reply->version = KH_VERSION;
  reply->seq = req->seq;
  *out_nfds = 0;
  int err = 0;
  if (req->type != KH_KEEP && nfds > 0) {
    err = EBADMSG;  // fds only come with KEEP
  } else if (req->type == KH_HELLO) {
    if (req->min_version > KH_VERSION || req->max_version < KH_VERSION) {
      err = EPROTONOSUPPORT;
    }
    reply->flags = runsSeeExits() ? KH_SEES_EXITS : 0;
    reply->max_runs = KH_MAX_RUNS;
  } else if (req->type == KH_KEEP) {
    err = keep(req, fds, nfds);
    nfds = err == 0 ? 0 : nfds;  // kept: the run owns them now
  } else if (req->type == KH_FETCH) {
    fetch(req, reply, out_fds, out_nfds);
  } else if (req->type == KH_FORGET) {
    struct Run* r = findRun(req->id);
    if (r == NULL) {
      err = ENOENT;
    } else {
      closeRun(r);
    }
  } else if (req->type == KH_LIST) {
    list(req, reply, list_buf, list_cap);
  } else {
    err = EPROTO;  // a reply sent to us
  }
  for (int i = 0; i < nfds; i++) {
    close(fds[i]);
  }
  if (err != 0) {
    memset(reply, 0, sizeof *reply);
    reply->type = KH_ERROR;
    reply->version = KH_VERSION;
    reply->seq = req->seq;
    reply->errnum = err;
    *out_nfds = 0;
  }
}
