#include "agent/node/dbus_wire.h"

#include <cstring>

namespace kernelet::agent::dbus {
namespace {

constexpr size_t kFixedHeader = 16;  // endian, type, flags, version, body length, serial
constexpr int kMaxDepth = 32;        // the specification's limit on nested containers, halved
constexpr uint8_t kNoReplyExpected = 0x1;

enum Field : uint8_t {
  kPath = 1,
  kInterface = 2,
  kMember = 3,
  kErrorName = 4,
  kReplySerial = 5,
  kDestination = 6,
  kSender = 7,
  kSignature = 8,
  kUnixFds = 9,
};

std::unexpected<Error> bad(const std::string& what) {
  return makeError("read D-Bus message", "", what);
}

size_t padTo(size_t n, size_t a) { return (n + a - 1) / a * a; }

// Little-endian, as x86's sd-bus and dbus-daemon write.
class Writer {
 public:
  void pad(size_t a) { out_.resize(padTo(out_.size(), a), '\0'); }
  void byte(uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void u32(uint32_t v) {
    pad(4);
    for (int i = 0; i < 4; i++) {
      byte(static_cast<uint8_t>(v >> (8 * i)));
    }
  }
  void string(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    out_ += s;
    byte(0);
  }
  void signature(const std::string& s) {
    byte(static_cast<uint8_t>(s.size()));
    out_ += s;
    byte(0);
  }
  // A header field: (code, variant of `type`).
  void field(uint8_t code, char type, const std::string& s) {
    pad(8);
    byte(code);
    signature(std::string(1, type));
    if (type == 'g') {
      signature(s);
    } else {
      string(s);
    }
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

uint32_t fromBytes32(const char* p, bool big) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    auto b = static_cast<uint8_t>(p[big ? i : 3 - i]);
    v = (v << 8) | b;
  }
  return v;
}

}  // namespace

std::string encode(const Call& call, uint32_t serial) {
  std::string sig;
  Writer body;
  for (const Call::Arg& a : call.args) {
    sig += a.type;
    if (a.type == 's') {
      body.string(a.s);
    } else {
      body.u32(static_cast<uint32_t>(a.i));
    }
  }
  Writer w;
  w.byte('l');
  w.byte(static_cast<uint8_t>(Type::kMethodCall));
  w.byte(call.no_reply ? kNoReplyExpected : 0);
  w.byte(1);  // protocol version
  w.u32(static_cast<uint32_t>(body.out().size()));
  w.u32(serial);
  Writer fields;  // the header's array of (yv), its length counted without the first pad
  fields.field(kPath, 'o', call.path);
  if (!call.interface.empty()) {
    fields.field(kInterface, 's', call.interface);
  }
  fields.field(kMember, 's', call.member);
  if (!call.destination.empty()) {
    fields.field(kDestination, 's', call.destination);
  }
  if (!sig.empty()) {
    fields.field(kSignature, 'g', sig);
  }
  w.u32(static_cast<uint32_t>(fields.out().size()));  // at offset 12; the array starts at 16
  w.out() += fields.out();
  w.pad(8);
  w.out() += body.out();
  return std::move(w.out());
}

Result<std::optional<size_t>> messageLength(std::string_view data) {
  if (data.size() < kFixedHeader) {
    return std::nullopt;
  }
  if (data[0] != 'l' && data[0] != 'B') {
    return bad("endianness mark is neither 'l' nor 'B'");
  }
  if (data[3] != 1) {
    return bad("protocol version " + std::to_string(static_cast<uint8_t>(data[3])) + ", not 1");
  }
  bool big = data[0] == 'B';
  uint64_t body = fromBytes32(data.data() + 4, big);
  uint64_t fields = fromBytes32(data.data() + 12, big);
  uint64_t total = padTo(kFixedHeader + fields, 8) + body;
  if (total > kMaxMessage) {
    return bad("message of " + std::to_string(total) + " bytes, more than " +
               std::to_string(kMaxMessage));
  }
  return static_cast<size_t>(total);
}

namespace {

// The header's array of (code, variant) structs, from byte 16 to `end`.
Result<void> readHeaderFields(std::string_view data, size_t end, Message& m) {
  size_t pos = kFixedHeader;
  while (pos < end) {
    pos = padTo(pos, 8);
    if (pos >= end) {
      return bad("header field array ends in padding");
    }
    Reader r(data.substr(0, end), "yv", m.big_endian, pos);
    TRY(uint8_t code, r.readByte());
    TRY(Reader v, r.readVariant());
    pos = r.pos();
    auto str = [&](std::string& out) -> Result<void> {
      TRY(out, v.readString());
      return {};
    };
    switch (code) {
      case kPath:
      case kInterface:
      case kMember:
      case kErrorName:
      case kDestination:
      case kSender: {
        std::string* out[] = {nullptr,       &m.path, &m.interface,   &m.member,
                              &m.error_name, nullptr, &m.destination, &m.sender};
        TRY_VOID(str(*out[code]));
        break;
      }
      case kSignature: {
        TRY(m.signature, v.readSignature());
        break;
      }
      case kReplySerial: {
        TRY(uint32_t s, v.readU32());
        m.reply_serial = s;
        break;
      }
      case kUnixFds: {
        TRY(m.unix_fds, v.readU32());
        break;
      }
      default:
        break;  // unknown fields are ignored, as the specification says
    }
  }
  return {};
}

}  // namespace

Result<Message> decode(std::string_view data) {
  TRY(std::optional<size_t> len, messageLength(data));
  if (!len || *len != data.size()) {
    return bad("truncated message");
  }
  Message m;
  m.big_endian = data[0] == 'B';
  auto type = static_cast<uint8_t>(data[1]);
  if (type < 1 || type > 4) {
    return bad("message type " + std::to_string(type));
  }
  m.type = static_cast<Type>(type);
  m.serial = fromBytes32(data.data() + 8, m.big_endian);
  size_t fields_len = fromBytes32(data.data() + 12, m.big_endian);
  size_t body_at = padTo(kFixedHeader + fields_len, 8);
  // Their alignment counts from the message's start.
  TRY_VOID(readHeaderFields(data, kFixedHeader + fields_len, m));
  m.body = std::string(data.substr(body_at));
  if (m.serial == 0) {
    return bad("serial 0");
  }
  if ((m.type == Type::kReturn || m.type == Type::kError) && !m.reply_serial) {
    return bad("reply without REPLY_SERIAL");
  }
  if (m.type == Type::kSignal && (m.path.empty() || m.interface.empty() || m.member.empty())) {
    return bad("signal without PATH, INTERFACE or MEMBER");
  }
  if (m.body.size() > 0 && m.signature.empty()) {
    return bad("a body without a SIGNATURE");
  }
  return m;
}

Result<void> Reader::expect(char type) {
  if (sig_pos_ >= sig_.size()) {
    return bad(std::string("expected a '") + type + "', the signature \"" + std::string(sig_) +
               "\" has ended");
  }
  if (sig_[sig_pos_] != type) {
    return bad(std::string("expected a '") + type + "', the signature \"" + std::string(sig_) +
               "\" has '" + sig_[sig_pos_] + "'");
  }
  sig_pos_++;
  return {};
}

Result<void> Reader::align(size_t n) {
  size_t to = padTo(pos_, n);
  if (to > data_.size()) {
    return bad("value past the end");
  }
  for (size_t i = pos_; i < to; i++) {
    if (data_[i] != '\0') {
      return bad("padding that is not zero");
    }
  }
  pos_ = to;
  return {};
}

Result<uint8_t> Reader::rawByte() {
  if (pos_ + 1 > data_.size()) {
    return bad("value past the end");
  }
  return static_cast<uint8_t>(data_[pos_++]);
}

Result<uint32_t> Reader::rawU32() {
  TRY_VOID(align(4));
  if (pos_ + 4 > data_.size()) {
    return bad("value past the end");
  }
  uint32_t v = fromBytes32(data_.data() + pos_, big_);
  pos_ += 4;
  return v;
}

Result<uint64_t> Reader::rawU64() {
  TRY_VOID(align(8));
  if (pos_ + 8 > data_.size()) {
    return bad("value past the end");
  }
  uint64_t hi = fromBytes32(data_.data() + pos_ + (big_ ? 0 : 4), big_);
  uint64_t lo = fromBytes32(data_.data() + pos_ + (big_ ? 4 : 0), big_);
  pos_ += 8;
  return (hi << 32) | lo;
}

// A string of `len_bytes`-wide length (4 for 's'/'o', 1 for 'g'), NUL-terminated.
Result<std::string> Reader::rawString(size_t len_bytes) {
  uint64_t len = 0;
  if (len_bytes == 4) {
    TRY(len, rawU32());
  } else {
    TRY(len, rawByte());
  }
  if (len >= data_.size() - pos_ || data_[pos_ + len] != '\0') {
    return bad("string past the end or not NUL-terminated");
  }
  std::string out(data_.substr(pos_, len));
  if (out.find('\0') != std::string::npos) {
    return bad("string with a NUL inside");
  }
  pos_ += len + 1;
  return out;
}

Result<uint8_t> Reader::readByte() {
  TRY_VOID(expect('y'));
  return rawByte();
}

Result<bool> Reader::readBool() {
  TRY_VOID(expect('b'));
  TRY(uint32_t v, rawU32());
  if (v > 1) {
    return bad("boolean " + std::to_string(v));
  }
  return v == 1;
}

Result<uint32_t> Reader::readU32() {
  TRY_VOID(expect('u'));
  return rawU32();
}

Result<uint32_t> Reader::readFdIndex() {
  TRY_VOID(expect('h'));
  return rawU32();
}

Result<uint64_t> Reader::readU64() {
  TRY_VOID(expect('t'));
  return rawU64();
}

Result<std::string> Reader::readString() {
  if (sig_pos_ < sig_.size() && sig_[sig_pos_] == 'o') {
    sig_pos_++;
  } else {
    TRY_VOID(expect('s'));
  }
  return rawString(4);
}

Result<std::string> Reader::readSignature() {
  TRY_VOID(expect('g'));
  return rawString(1);
}

Result<Reader> Reader::readVariant() {
  TRY_VOID(expect('v'));
  TRY(std::string sig, rawString(1));
  // Exactly one complete type, which is checked (and stepped over) here.
  Reader inner(data_, "", big_, pos_);
  inner.owned_sig_ = std::make_shared<const std::string>(std::move(sig));
  inner.sig_ = *inner.owned_sig_;
  TRY(size_t end_sig, skipType(inner.sig_, 0, 1));
  if (end_sig != inner.sig_.size() || inner.sig_.empty()) {
    return bad("variant signature \"" + std::string(inner.sig_) + "\" is not one complete type");
  }
  return inner;
}

Result<void> Reader::skip() {
  if (atEnd()) {
    return bad("nothing left to skip");
  }
  TRY(sig_pos_, skipType(sig_, sig_pos_, 0));
  return {};
}

Result<size_t> Reader::skipType(std::string_view sig, size_t at, int depth) {
  if (depth > kMaxDepth) {
    return bad("values nested too deep");
  }
  if (at >= sig.size()) {
    return bad("signature \"" + std::string(sig) + "\" ends inside a type");
  }
  switch (sig[at]) {
    case 'y':
      TRY_VOID(rawByte());
      return at + 1;
    case 'b':
    case 'n':
    case 'q':
    case 'i':
    case 'u':
    case 'h':
      if (sig[at] == 'n' || sig[at] == 'q') {
        TRY_VOID(align(2));
        if (pos_ + 2 > data_.size()) {
          return bad("value past the end");
        }
        pos_ += 2;
      } else {
        TRY_VOID(rawU32());
      }
      return at + 1;
    case 'x':
    case 't':
    case 'd':
      TRY_VOID(rawU64());
      return at + 1;
    case 's':
    case 'o':
      TRY_VOID(rawString(4));
      return at + 1;
    case 'g':
      TRY_VOID(rawString(1));
      return at + 1;
    case 'v': {
      TRY(std::string inner, rawString(1));
      TRY(size_t end, skipType(inner, 0, depth + 1));
      if (end != inner.size()) {
        return bad("variant signature \"" + inner + "\" is not one complete type");
      }
      return at + 1;
    }
    case '(':
    case '{': {
      char close = sig[at] == '(' ? ')' : '}';
      TRY_VOID(align(8));
      size_t i = at + 1;
      while (i < sig.size() && sig[i] != close) {
        TRY(i, skipType(sig, i, depth + 1));
      }
      if (i >= sig.size() || i == at + 1) {
        return bad("signature \"" + std::string(sig) + "\" has an empty or open struct");
      }
      return i + 1;
    }
    case 'a':
      return skipArray(sig, at, depth);
    default:
      return bad(std::string("unknown type '") + sig[at] + "'");
  }
}

// An array: its byte length, padding to the element's alignment, then
// elements of the one complete type after the 'a', up to that length.
Result<size_t> Reader::skipArray(std::string_view sig, size_t at, int depth) {
  TRY(uint32_t len, rawU32());
  if (len > data_.size()) {
    return bad("array longer than the message");
  }
  size_t elem = at + 1;
  if (elem >= sig.size()) {
    return bad("array without an element type");
  }
  char e = sig[elem];
  size_t a = (e == 'x' || e == 't' || e == 'd' || e == '(' || e == '{') ? 8
             : (e == 'y' || e == 'g' || e == 'v')                       ? 1
             : (e == 'n' || e == 'q')                                   ? 2
                                                                        : 4;
  TRY_VOID(align(a));
  size_t stop = pos_ + len;
  if (stop > data_.size()) {
    return bad("array past the end");
  }
  // Where the element type ends, found without reading values (an empty
  // array has none to read).
  int open = 0;
  size_t elem_end = elem;
  do {
    if (elem_end >= sig.size()) {
      return bad("signature \"" + std::string(sig) + "\" ends inside an array");
    }
    char c = sig[elem_end];
    if (c == '(' || c == '{') {
      open++;
    } else if (c == ')' || c == '}') {
      open--;
    }
    elem_end++;
  } while (open > 0 || sig[elem_end - 1] == 'a');
  while (pos_ < stop) {
    TRY(size_t end, skipType(sig, elem, depth + 1));
    if (end != elem_end) {
      return bad("array element type mismatch");
    }
  }
  if (pos_ != stop) {
    return bad("array elements overrun its length");
  }
  return elem_end;
}

}  // namespace kernelet::agent::dbus
