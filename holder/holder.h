#pragma once
// The holder's parts (holder.c: main and the loop, runs.c: the kept runs and
// the requests, connector.c: exits from the proc connector). Single-threaded.

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "holder/protocol.h"

// epoll tags: kind << 32 | index.
enum { TAG_LISTEN = 1, TAG_CONNECTOR = 2, TAG_CLIENT = 3, TAG_RUN = 4 };

extern int g_epoll;

// The proc connector (connector.c). Opens and subscribes; -1 when the kernel
// will not tell us (no CONFIG_PROC_EVENTS, not root in the init namespaces).
int connectorOpen(void);
// Reads every queued event, calling runsExited for each process exit.
void connectorDrain(int fd);

// The run table (runs.c).
void runsInit(int connector_fd, int64_t ended_ttl_ns);
int runsSeeExits(void);
// A thread of process `tgid` exited with `wait_status` at `finished_ns`
// (CLOCK_REALTIME), `mono_ns` (CLOCK_MONOTONIC, the event's own time).
void runsExited(pid_t tgid, int wait_status, int64_t finished_ns, int64_t mono_ns);
// The connector dropped events (ENOBUFS).
void runsEventsLost(void);
// Settles runs whose last exit event is overdue; the CLOCK_MONOTONIC time
// the next one is due (0: none waits).
int64_t runsSettle(void);
// The pidfd of the run at `slot` became readable.
void runsPidfdReady(size_t slot);
// Drops runs that ended and were not fetched for the TTL.
void runsSweep(void);
// Answers one request, already parsed; `fds` (owned) came with it. Writes the
// reply into `reply` and the fds to pass with it (not owned) into `out_fds`.
void runsServe(const struct kh_msg* req, int* fds, int nfds, struct kh_msg* reply,
               uint8_t* list_buf, size_t list_cap, int* out_fds, int* out_nfds);

int64_t nowNs(int clock);
void logMsg(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
