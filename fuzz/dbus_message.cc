// D-Bus messages from the system bus (agent/node/dbus_wire.h): the framing,
// the header fields and the bodies the node-shutdown manager reads (a
// variant of uint64, a bool, an fd index, strings), every other value
// skipped by its signature. Also the bus address (DBUS_SYSTEM_BUS_ADDRESS) and
// the Go durations of --shutdown-grace-period. Input: the message bytes, then
// (after a "#--#" line) an address or duration.

#include <cstdint>
#include <string>

#include "agent/config/config.h"
#include "agent/node/dbus_connection.h"
#include "agent/node/dbus_wire.h"
#include "fuzz/fuzz_support.h"

namespace dbus = kernelet::agent::dbus;

static void readBody(const dbus::Message& m) {
  // Every way the manager reads a body, each on a fresh reader.
  dbus::Reader a(m.body, m.signature, m.big_endian);
  if (auto v = a.readVariant()) {
    (void)v->readU64();
  }
  dbus::Reader b(m.body, m.signature, m.big_endian);
  (void)b.readBool();
  dbus::Reader c(m.body, m.signature, m.big_endian);
  (void)c.readFdIndex();
  dbus::Reader d(m.body, m.signature, m.big_endian);
  (void)d.readString();
  dbus::Reader all(m.body, m.signature, m.big_endian);
  while (!all.atEnd() && all.skip()) {
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = kernelet::fuzz::splitParts(data, size, 2);
  std::string_view bytes = parts[0];
  while (!bytes.empty()) {
    auto len = dbus::messageLength(bytes);
    if (!len || !*len || **len > bytes.size()) {
      break;
    }
    if (auto m = dbus::decode(bytes.substr(0, **len))) {
      readBody(*m);
    }
    bytes.remove_prefix(**len);
  }
  (void)dbus::unixSocketOf(parts[1]);
  (void)kernelet::agent::parseDurationSeconds(parts[1], "--shutdown-grace-period");
  return 0;
}
