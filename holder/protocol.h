#pragma once
// The holder's protocol, version 1: what the agent (agent/runtime/holder_keeper.h)
// and the node's one kernelet-holder say to each other over a unix
// SOCK_SEQPACKET socket. One request, one reply, each a single datagram of at
// most KH_MAX_MSG bytes, every integer in host byte order (the socket is local).
//
// Every message starts with an 8-byte header:
//   u16 type, u16 version (KH_VERSION), u32 seq (the reply echoes the request's)
// A reply's type is the request's | KH_REPLY, or KH_ERROR.
//
//   HELLO   u16 min_version, u16 max_version
//     ->    u16 version (the holder's pick), u16 flags (KH_SEES_EXITS), u32 max_runs
//   KEEP    i32 pid, u64 start_time (/proc/PID/stat field 22), id; SCM_RIGHTS: the
//           run's pidfd, then 0..KH_MAX_RUN_FDS fds (its log pipes' read ends)
//     ->    (empty)
//   FETCH   id
//     ->    u8 state (KH_RUNNING, KH_EXITED, KH_EXIT_LOST), u8 nfds, u16 0,
//           i32 wait_status, i64 finished_unix_ns; SCM_RIGHTS: dups of the pidfd
//           and the fds KEEP gave
//   FORGET  id
//     ->    (empty)
//   LIST    u32 from
//     ->    u32 total, u32 next (== total when done), u16 count, count ids
//   any  -> KH_ERROR: i32 errnum (an errno: EBADMSG malformed, EPROTONOSUPPORT
//           version, ENOENT no such run, ENOSPC full, ESRCH pid gone or reused)
// An id is u16 length + 1..KH_MAX_ID bytes, each printable ASCII except space.
//
// This file is C (the holder is C, libc only); the parser is fuzzed
// (fuzz/holder_protocol.cc).

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KH_VERSION 1
#define KH_MAX_MSG 4096
#define KH_HEADER 8
#define KH_MAX_ID 128
#define KH_MAX_RUN_FDS 4  // besides the pidfd
#define KH_MAX_RUNS 1024  // runs one holder keeps
#define KH_MAX_FDS 4096   // fds one holder keeps, all runs together

enum kh_type {
  KH_HELLO = 1,
  KH_KEEP = 2,
  KH_FETCH = 3,
  KH_FORGET = 4,
  KH_LIST = 5,
  KH_REPLY = 0x80,
  KH_ERROR = 0xff,
};

enum kh_flags { KH_SEES_EXITS = 1 };

enum kh_state { KH_RUNNING = 0, KH_EXITED = 1, KH_EXIT_LOST = 2 };

// One message, parsed or to encode. Only the fields of its type matter.
struct kh_msg {
  uint16_t type;
  uint16_t version;
  uint32_t seq;
  // HELLO request / reply
  uint16_t min_version, max_version;
  uint16_t flags;
  uint32_t max_runs;
  // KEEP, FETCH, FORGET: the run
  int32_t pid;
  uint64_t start_time;
  uint16_t id_len;
  char id[KH_MAX_ID + 1];  // NUL-terminated copy
  // FETCH reply
  uint8_t state, nfds;
  int32_t wait_status;
  int64_t finished_ns;
  // LIST request / reply: `list` points into the parsed buffer (or, to encode,
  // at entries built with kh_list_append), `list_len` bytes of `count` ids.
  uint32_t from, total, next;
  uint16_t count;
  const uint8_t* list;
  size_t list_len;
  // ERROR reply
  int32_t errnum;
};

// Parses one datagram. 0, or -EBADMSG (short, long, bad field),
// -EPROTONOSUPPORT (a version other than KH_VERSION outside HELLO), -EPROTO
// (an unknown type). `m` is zeroed first.
int kh_parse(const void* buf, size_t len, struct kh_msg* m);

// Encodes `m` into `buf`; the length, or 0 when it does not fit or a field is
// invalid (an id too long, a list too big).
size_t kh_encode(const struct kh_msg* m, void* buf, size_t cap);

// Appends one id to a LIST reply's entries in `buf` (of `cap` bytes, `*len`
// used). 0, or -ENOSPC when it does not fit.
int kh_list_append(uint8_t* buf, size_t cap, size_t* len, const char* id, size_t id_len);

// The next id of a parsed LIST reply's entries from `*at`: 1 and the id, or 0
// at the end. Entries were checked by kh_parse.
int kh_list_next(const struct kh_msg* m, size_t* at, const char** id, size_t* id_len);

// Whether `id` (of `len` bytes) is a valid run id.
int kh_valid_id(const char* id, size_t len);

#ifdef __cplusplus
}
#endif
