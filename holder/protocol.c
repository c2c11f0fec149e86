// The holder protocol's parser and encoder (protocol.h). Outside input: every
// read is bounds-checked, a message must be exactly as long as its fields.
#include "holder/protocol.h"

#include <errno.h>
#include <string.h>

// A cursor over a message being read; `bad` sticks once a read overruns.
struct Reader {
  const uint8_t* p;
  size_t len, at;
  int bad;
};

static void take(struct Reader* r, void* out, size_t n) {
  if (r->bad || r->len - r->at < n) {
    r->bad = 1;
    memset(out, 0, n);
    return;
  }
  memcpy(out, r->p + r->at, n);
  r->at += n;
}

static uint16_t take16(struct Reader* r) {
  uint16_t v;
  take(r, &v, sizeof v);
  return v;
}

static uint32_t take32(struct Reader* r) {
  uint32_t v;
  take(r, &v, sizeof v);
  return v;
}

static uint64_t take64(struct Reader* r) {
  uint64_t v;
  take(r, &v, sizeof v);
  return v;
}

int kh_valid_id(const char* id, size_t len) {
  if (len == 0 || len > KH_MAX_ID) {
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    if (id[i] <= ' ' || id[i] > '~') {
      return 0;
    }
  }
  return 1;
}

static void takeId(struct Reader* r, struct kh_msg* m) {
  m->id_len = take16(r);
  if (r->bad || !(m->id_len > 0 && m->id_len <= KH_MAX_ID) || r->len - r->at < m->id_len) {
    r->bad = 1;
    m->id_len = 0;
    return;
  }
  memcpy(m->id, r->p + r->at, m->id_len);
  m->id[m->id_len] = '\0';
  r->at += m->id_len;
  if (!kh_valid_id(m->id, m->id_len)) {
    r->bad = 1;
  }
}

// A LIST reply's entries: `count` valid ids filling the rest exactly.
static void takeList(struct Reader* r, struct kh_msg* m) {
  m->list = r->p + r->at;
  size_t start = r->at;
  struct kh_msg one;
  for (uint16_t i = 0; i < m->count && !r->bad; i++) {
    takeId(r, &one);
  }
  m->list_len = r->at - start;
}

static void parseBody(struct Reader* r, struct kh_msg* m) {
  switch (m->type) {
    case KH_HELLO:
      m->min_version = take16(r);
      m->max_version = take16(r);
      break;
    case KH_HELLO | KH_REPLY:
      m->version = take16(r);
      m->flags = take16(r);
      m->max_runs = take32(r);
      break;
    case KH_KEEP:
      m->pid = (int32_t)take32(r);
      m->start_time = take64(r);
      takeId(r, m);
      break;
    case KH_FETCH:
    case KH_FORGET:
      takeId(r, m);
      break;
    case KH_FETCH | KH_REPLY:
      take(r, &m->state, 1);
      take(r, &m->nfds, 1);
      if (take16(r) != 0 || m->state > KH_EXIT_LOST || m->nfds > 1 + KH_MAX_RUN_FDS) {
        r->bad = 1;
      }
      m->wait_status = (int32_t)take32(r);
      m->finished_ns = (int64_t)take64(r);
      break;
    case KH_LIST:
      m->from = take32(r);
      break;
    case KH_LIST | KH_REPLY:
      m->total = take32(r);
      m->next = take32(r);
      m->count = take16(r);
      if (m->next > m->total) {
        r->bad = 1;
      }
      takeList(r, m);
      break;
    case KH_ERROR:
      m->errnum = (int32_t)take32(r);
      if (m->errnum <= 0) {
        r->bad = 1;
      }
      break;
    default:  // KEEP, FORGET replies: empty
      break;
  }
}

static int knownType(uint16_t t) {
  uint16_t base = t == KH_ERROR ? KH_ERROR : (uint16_t)(t & ~KH_REPLY);
  return (t == KH_ERROR || (base >= KH_HELLO && base <= KH_LIST)) && (t & 0xff00) == 0;
}

int kh_parse(const void* buf, size_t len, struct kh_msg* m) {
  memset(m, 0, sizeof *m);
  if (len < KH_HEADER || len > KH_MAX_MSG) {
    return -EBADMSG;
  }
  struct Reader r = {.p = buf, .len = len, .at = 0, .bad = 0};
  m->type = take16(&r);
  m->version = take16(&r);
  m->seq = take32(&r);
  if (!knownType(m->type)) {
    return -EPROTO;
  }
  // HELLO is how versions are agreed, so any version may send it or answer it.
  if ((m->type & ~KH_REPLY) != KH_HELLO && m->version != KH_VERSION) {
    return -EPROTONOSUPPORT;
  }
  uint16_t header_version = m->version;
  parseBody(&r, m);
  if (m->type != (KH_HELLO | KH_REPLY)) {
    m->version = header_version;
  }
  if (r.bad || r.at != len) {
    return -EBADMSG;
  }
  return 0;
}

// A cursor over a message being written; `bad` sticks once it overflows.
struct Writer {
  uint8_t* p;
  size_t cap, at;
  int bad;
};

static void put(struct Writer* w, const void* v, size_t n) {
  if (w->bad || w->cap - w->at < n) {
    w->bad = 1;
    return;
  }
  memcpy(w->p + w->at, v, n);
  w->at += n;
}

static void put16(struct Writer* w, uint16_t v) { put(w, &v, sizeof v); }
static void put32(struct Writer* w, uint32_t v) { put(w, &v, sizeof v); }
static void put64(struct Writer* w, uint64_t v) { put(w, &v, sizeof v); }

static void putId(struct Writer* w, const char* id, size_t len) {
  if (!kh_valid_id(id, len)) {
    w->bad = 1;
    return;
  }
  put16(w, (uint16_t)len);
  put(w, id, len);
}

static void encodeBody(struct Writer* w, const struct kh_msg* m) {
  uint8_t state = m->state, nfds = m->nfds;
  switch (m->type) {
    case KH_HELLO:
      put16(w, m->min_version);
      put16(w, m->max_version);
      break;
    case KH_HELLO | KH_REPLY:
      put16(w, m->version);
      put16(w, m->flags);
      put32(w, m->max_runs);
      break;
    case KH_KEEP:
      put32(w, (uint32_t)m->pid);
      put64(w, m->start_time);
      putId(w, m->id, m->id_len);
      break;
    case KH_FETCH:
    case KH_FORGET:
      putId(w, m->id, m->id_len);
      break;
    case KH_FETCH | KH_REPLY:
      put(w, &state, 1);
      put(w, &nfds, 1);
      put16(w, 0);
      put32(w, (uint32_t)m->wait_status);
      put64(w, (uint64_t)m->finished_ns);
      break;
    case KH_LIST:
      put32(w, m->from);
      break;
    case KH_LIST | KH_REPLY:
      put32(w, m->total);
      put32(w, m->next);
      put16(w, m->count);
      put(w, m->list, m->list_len);
      break;
    case KH_ERROR:
      put32(w, (uint32_t)m->errnum);
      break;
    default:
      break;
  }
}

size_t kh_encode(const struct kh_msg* m, void* buf, size_t cap) {
  if (!knownType(m->type)) {
    return 0;
  }
  struct Writer w = {.p = buf, .cap = cap < KH_MAX_MSG ? cap : KH_MAX_MSG, .at = 0, .bad = 0};
  put16(&w, m->type);
  // The header names the protocol this encoder speaks; a HELLO reply's body
  // carries the version picked for the connection.
  put16(&w, KH_VERSION);
  put32(&w, m->seq);
  encodeBody(&w, m);
  return w.bad ? 0 : w.at;
}

int kh_list_append(uint8_t* buf, size_t cap, size_t* len, const char* id, size_t id_len) {
  if (!kh_valid_id(id, id_len)) {
    return -EINVAL;
  }
  if (cap < *len || cap - *len < 2 + id_len) {
    return -ENOSPC;
  }
  uint16_t n = (uint16_t)id_len;
  memcpy(buf + *len, &n, 2);
  memcpy(buf + *len + 2, id, id_len);
  *len += 2 + id_len;
  return 0;
}

int kh_list_next(const struct kh_msg* m, size_t* at, const char** id, size_t* id_len) {
  if (*at + 2 > m->list_len) {
    return 0;
  }
  uint16_t n;
  memcpy(&n, m->list + *at, 2);
  if (*at + 2 + n > m->list_len) {
    return 0;
  }
  *id = (const char*)m->list + *at + 2;
  *id_len = n;
  *at += 2 + (size_t)n;
  return 1;
}
