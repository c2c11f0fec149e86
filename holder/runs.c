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
  // While RUNNING: the last exit event of a thread of the process (the
  // status once the whole group is gone), and CLOCK_MONOTONIC times: when
  // its pidfd was first seen exited (0: not yet) and when events were last
  // dropped (0: never).
  int have_event;
  int event_status;
  int64_t event_finished_ns, event_mono_ns;
  int64_t gone_mono_ns, lost_mono_ns;
  int final_seen;      // an event came while the pidfd read exited
  int64_t touched_ns;  // CLOCK_BOOTTIME: when it ended or was last fetched
};

// How long after a run's pidfd reads exited its last exit event may still
// come (the exiting thread sends it right after, unless preempted).
#define SETTLE_NS (200 * 1000000LL)

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

static int pidfdExited(int pidfd) {
  struct pollfd p = {.fd = pidfd, .events = POLLIN};
  return poll(&p, 1, 0) > 0;
}

// Notes when the run's pidfd first read exited: the whole thread group is
// gone (a zombie leader with live threads does not count).
static int seeGone(struct Run* r) {
  if (r->gone_mono_ns == 0 && pidfdExited(r->pidfd)) {
    r->gone_mono_ns = nowNs(CLOCK_MONOTONIC);
    unwatch(r);  // readable for good: runsSettle() decides by its time from now on
  }
  return r->gone_mono_ns != 0;
}

static void settle(struct Run* r, int state) {
  r->state = state;
  if (state == KH_EXITED) {
    r->wait_status = r->event_status;
    r->finished_ns = r->event_finished_ns;
  }
  r->touched_ns = nowNs(CLOCK_BOOTTIME);
  unwatch(r);
}

void runsExited(pid_t tgid, int wait_status, int64_t finished_ns, int64_t mono_ns) {
  for (size_t i = 0; i < KH_MAX_RUNS; i++) {
    struct Run* r = &g_runs[i];
    if (!r->used || r->pid != tgid || r->state != KH_RUNNING) {
      continue;  // a settled run takes no more: a later exit is a reused pid's
    }
    // The last one wins: an earlier thread's exit (a leader's pthread_exit, a
    // leader killed by a worker's execve) is not the process's. With
    // exit_group every thread's event carries the group's status.
    r->have_event = 1;
    r->event_status = wait_status;
    r->event_finished_ns = finished_ns;
    r->event_mono_ns = mono_ns;
    // do_exit sends the event just AFTER exit_notify, where the pidfd of the
    // group's last thread turns readable: an event read while the pidfd
    // reads exited is the last thread's (or one queued just before it).
    if (seeGone(r)) {
      r->final_seen = 1;
    }
  }
}

// Takes the run's last event for its exit once the group is gone and that
// event came; calls it lost if it did not come within SETTLE_NS of the pidfd
// reading exited (or was sent before events were dropped). 1 when settled.
static int decide(struct Run* r, int64_t now) {
  if (r->state != KH_RUNNING || r->gone_mono_ns == 0) {
    return r->state != KH_RUNNING;
  }
  if (r->final_seen && r->have_event && r->event_mono_ns > r->lost_mono_ns) {
    settle(r, KH_EXITED);
  } else if (now - r->gone_mono_ns >= SETTLE_NS) {
    settle(r, KH_EXIT_LOST);
  }
  return r->state != KH_RUNNING;
}

// Events were dropped. A run already gone may have lost its last event (and
// would otherwise take an earlier thread's): its exit is lost. One still
// running accepts only an event stamped after this moment (its last thread's
// is sent after its pidfd turns readable, so after this look).
void runsEventsLost(void) {
  int64_t now = nowNs(CLOCK_MONOTONIC);
  for (size_t i = 0; i < KH_MAX_RUNS; i++) {
    struct Run* r = &g_runs[i];
    if (!r->used || r->state != KH_RUNNING) {
      continue;
    }
    if (seeGone(r)) {
      settle(r, KH_EXIT_LOST);
    } else {
      r->lost_mono_ns = now;
    }
  }
}

// Brings the run's state up to date: drains the connector; once the pidfd
// reads exited, decides as soon as the last event is there.
static void refresh(struct Run* r) {
  if (r->state != KH_RUNNING) {
    return;
  }
  (void)seeGone(r);
  connectorDrain(g_connector);
  (void)decide(r, nowNs(CLOCK_MONOTONIC));
}

// For a FETCH: a run that is gone but whose last event has not come yet (it
// is sent right after the pidfd turns readable) is waited for, at most until
// SETTLE_NS after it was seen gone, so the reply is final.
static void awaitDecision(struct Run* r) {
  while (r->state == KH_RUNNING && r->gone_mono_ns != 0 && g_connector >= 0) {
    int64_t now = nowNs(CLOCK_MONOTONIC);
    if (decide(r, now)) {
      return;
    }
    int ms = (int)((r->gone_mono_ns + SETTLE_NS - now) / 1000000) + 1;
    struct pollfd p = {.fd = g_connector, .events = POLLIN};
    (void)poll(&p, 1, ms);  // EINTR or a timeout: decide() looks again
    connectorDrain(g_connector);
  }
  (void)decide(r, nowNs(CLOCK_MONOTONIC) + SETTLE_NS);  // no connector: lost now
}

int64_t runsSettle(void) {
  int64_t now = nowNs(CLOCK_MONOTONIC), next = 0;
  for (size_t i = 0; i < KH_MAX_RUNS; i++) {
    struct Run* r = &g_runs[i];
    if (!r->used || r->state != KH_RUNNING || r->gone_mono_ns == 0 || decide(r, now)) {
      continue;
    }
    int64_t at = r->gone_mono_ns + SETTLE_NS;
    next = next == 0 || at < next ? at : next;
  }
  return next;
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
    if (r->gone_mono_ns == 0) {  // a gone one waits for runsSettle(), not for its pidfd
      (void)epoll_ctl(g_epoll, EPOLL_CTL_ADD, r->pidfd, &ev);  // else refresh() on FETCH finds it
    }
    if (!same && seeGone(r)) {
      settle(r, KH_EXIT_LOST);  // ended before KEEP: its events were drained above, unmatched
    } else {
      refresh(r);  // the same process again: its events so far stay
    }
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
  awaitDecision(r);
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
