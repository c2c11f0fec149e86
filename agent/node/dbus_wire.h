#pragma once
// The D-Bus wire format (the specification's "Message Protocol"), as much of
// it as the node-shutdown manager needs to talk to systemd-logind: method
// calls with string, int32 and no arguments, and replies and signals whose
// bodies are read value by value. The kernelet binary is static and Debian
// ships sd-bus only as a shared library, so the agent marshals the few
// messages itself; every message from the bus is outside input, read through
// bounds-checked readers (fuzz/dbus_message.cc).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/result.h"

namespace kernelet::agent::dbus {

enum class Type : uint8_t { kInvalid = 0, kMethodCall = 1, kReturn = 2, kError = 3, kSignal = 4 };

// Larger messages are refused: logind's replies and signals are a few hundred
// bytes (the specification allows 128 MiB, which no reply we ask for needs).
constexpr size_t kMaxMessage = 1 << 20;

// A method call to send. Arguments are strings ('s') or int32s ('i'), in order.
struct Call {
  std::string destination, path, interface, member;
  struct Arg {
    char type;  // 's' or 'i'
    std::string s;
    int32_t i = 0;
  };
  std::vector<Arg> args;
  bool no_reply = false;  // NO_REPLY_EXPECTED
};

// The wire bytes of `call` with `serial` (non-zero), little-endian.
std::string encode(const Call& call, uint32_t serial);

// A message read from the bus: its header fields and its body, unparsed.
struct Message {
  Type type = Type::kInvalid;
  uint32_t serial = 0;
  std::optional<uint32_t> reply_serial;
  std::string path, interface, member, error_name, destination, sender, signature;
  uint32_t unix_fds = 0;  // how many of the fds received with it are its own
  bool big_endian = false;
  std::string body;
};

// The length of the message at the front of `data` once its fixed header is
// there (16 bytes), nullopt before; an error for a header no message has
// (bad endianness mark, version, sizes past kMaxMessage).
Result<std::optional<size_t>> messageLength(std::string_view data);
// Parses one whole message (exactly messageLength() bytes).
Result<Message> decode(std::string_view data);

// Reads a body (or any value sequence) in signature order, aligned as the
// wire format wants. Every read checks bounds and the signature.
class Reader {
 public:
  // Values start at byte `pos` of `data`; alignment counts from data's start
  // (a message, or its body, which starts 8-aligned).
  Reader(std::string_view data, std::string_view signature, bool big_endian, size_t pos = 0)
      : data_(data), sig_(signature), big_(big_endian), pos_(pos) {}
  Result<uint8_t> readByte();  // 'y'
  Result<bool> readBool();
  Result<uint32_t> readU32();           // 'u'
  Result<uint32_t> readFdIndex();       // 'h': an index into the message's fds
  Result<uint64_t> readU64();           // 't'
  Result<std::string> readString();     // 's' or 'o'
  Result<std::string> readSignature();  // 'g'
  // 'v': the variant's value is read from the returned reader.
  Result<Reader> readVariant();
  // Skips the next value whatever its type (containers included).
  Result<void> skip();
  bool atEnd() const { return sig_pos_ >= sig_.size(); }
  size_t pos() const { return pos_; }

 private:
  Result<void> expect(char type);
  Result<void> align(size_t n);
  Result<uint32_t> rawU32();
  Result<uint64_t> rawU64();
  Result<std::string> rawString(size_t len_bytes);
  Result<uint8_t> rawByte();
  // Skips one value of the complete type at sig[at...), returns its end.
  Result<size_t> skipType(std::string_view sig, size_t at, int depth);
  Result<size_t> skipArray(std::string_view sig, size_t at, int depth);

  std::string_view data_, sig_;
  std::shared_ptr<const std::string> owned_sig_;  // a variant's signature, which sig_ views
  bool big_;
  size_t pos_ = 0, sig_pos_ = 0;
};

}  // namespace kernelet::agent::dbus
