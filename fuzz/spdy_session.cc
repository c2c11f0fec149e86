// The SPDY/3.1 server session (spdy/session.h) fed a client's bytes: the
// input is split into "receive" pieces and actions of the consumer (consume,
// send, finish, reset), chosen by control bytes. Whatever comes, the session
// must not crash, must keep its stream table within max_streams, and what it
// holds (unconsumed bytes, output between drains) must stay bounded by what
// it was fed.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "spdy/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kernelet::spdy;
  SessionOptions options{.initial_window = 4096,
                         .max_streams = 8,
                         .max_header_bytes = 4096,
                         .max_control_frame = 4096,
                         .max_data_frame = 1024,
                         .peer_flow_control = (size > 0 && data[0] & 1) != 0
                                                  ? PeerFlowControl::kOn
                                                  : PeerFlowControl::kAuto};
  Session session(options);
  size_t fed = 0;
  size_t at = size > 0 ? 1 : 0;
  while (at < size) {
    const uint8_t op = data[at++];
    const size_t n = 1 + op % 32;
    std::string_view piece(reinterpret_cast<const char*>(data) + at, std::min(n, size - at));
    const uint32_t id = 1 + 2 * (op % 8);
    switch (op >> 6) {
      case 0:
      case 1:
        at += piece.size();
        fed += piece.size();
        if (!session.receive(piece)) {
          at = size;  // a connection error ends it, as the transport does
        }
        break;
      case 2:
        session.consumed(id, n * 64);
        break;
      default:
        if (session.sendable(id) >= n) {
          (void)session.send(id, std::string(n, 'o'), (op & 0x20) != 0);  // a gone stream is fine
        } else if ((op & 0x20) != 0) {
          session.reset(id);
        }
        break;
    }
    (void)session.takeEvents();
    // Output is bounded by what came in (answers, RSTs, updates) and what we sent.
    if (session.outputSize() > 64 * (fed + 64) + size_t{64} * 1024) {
      std::abort();
    }
    (void)session.takeOutput();
    if (session.streamCount() > options.max_streams || session.unconsumed() > fed) {
      std::abort();
    }
  }
  return 0;
}
