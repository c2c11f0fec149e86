// The holder's protocol (holder/protocol.h): any datagram a client or a holder
// might send. The parser must never read outside it, and what it accepts must
// encode back into a message that parses to the same fields.

#include <cstdint>
#include <cstring>

#include "holder/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kh_msg m;
  if (kh_parse(data, size, &m) != 0) {
    return 0;
  }
  uint8_t buf[KH_MAX_MSG];
  size_t len = kh_encode(&m, buf, sizeof buf);
  if (len == 0) {
    __builtin_trap();  // accepted, yet does not encode
  }
  kh_msg again;
  if (kh_parse(buf, len, &again) != 0) {
    __builtin_trap();
  }
  bool same = m.type == again.type && m.seq == again.seq && m.pid == again.pid &&
              m.start_time == again.start_time && m.id_len == again.id_len &&
              std::memcmp(m.id, again.id, m.id_len) == 0 && m.state == again.state &&
              m.nfds == again.nfds && m.wait_status == again.wait_status &&
              m.finished_ns == again.finished_ns && m.total == again.total &&
              m.next == again.next && m.count == again.count && m.from == again.from &&
              m.list_len == again.list_len && m.errnum == again.errnum && m.flags == again.flags &&
              m.max_runs == again.max_runs && m.min_version == again.min_version &&
              m.max_version == again.max_version &&
              (m.list_len == 0 || std::memcmp(m.list, again.list, m.list_len) == 0);
  if (!same) {
    __builtin_trap();
  }
  // Every id a LIST reply carries is valid and within it.
  size_t at = 0, n = 0, id_len = 0;
  const char* id = nullptr;
  while (kh_list_next(&m, &at, &id, &id_len) != 0) {
    if (!kh_valid_id(id, id_len) || id < reinterpret_cast<const char*>(data) ||
        id + id_len > reinterpret_cast<const char*>(data) + size) {
      __builtin_trap();
    }
    n++;
  }
  if (n != m.count) {
    __builtin_trap();
  }
  return 0;
}
