#include "spdy/header_block.h"

#include <algorithm>
#include <array>
#include <set>

namespace kernelet::spdy {

namespace {

void put32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
uint32_t get32(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(b[at + 3])};
}

// The dictionary of draft 3, section 2.6.10.1: these words, each after its
// 32-bit length, then the tail below as it is. Its zlib id (adler32) is
// 0xe3c6a7c2, which every peer's header carries (tested).
constexpr std::array kDictionaryWords = {"options",
                                         "head",
                                         "post",
                                         "put",
                                         "delete",
                                         "trace",
                                         "accept",
                                         "accept-charset",
                                         "accept-encoding",
                                         "accept-language",
                                         "accept-ranges",
                                         "age",
                                         "allow",
                                         "authorization",
                                         "cache-control",
                                         "connection",
                                         "content-base",
                                         "content-encoding",
                                         "content-language",
                                         "content-length",
                                         "content-location",
                                         "content-md5",
                                         "content-range",
                                         "content-type",
                                         "date",
                                         "etag",
                                         "expect",
                                         "expires",
                                         "from",
                                         "host",
                                         "if-match",
                                         "if-modified-since",
                                         "if-none-match",
                                         "if-range",
                                         "if-unmodified-since",
                                         "last-modified",
                                         "location",
                                         "max-forwards",
                                         "pragma",
                                         "proxy-authenticate",
                                         "proxy-authorization",
                                         "range",
                                         "referer",
                                         "retry-after",
                                         "server",
                                         "te",
                                         "trailer",
                                         "transfer-encoding",
                                         "upgrade",
                                         "user-agent",
                                         "vary",
                                         "via",
                                         "warning",
                                         "www-authenticate",
                                         "method",
                                         "get",
                                         "status",
                                         "200 OK",
                                         "version",
                                         "HTTP/1.1",
                                         "url",
                                         "public",
                                         "set-cookie",
                                         "keep-alive",
                                         "origin"};
constexpr std::string_view kDictionaryTail =
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, "
    "Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,"
    "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch"
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

std::string buildDictionary() {
  std::string d;
  for (std::string_view w : kDictionaryWords) {
    put32(d, static_cast<uint32_t>(w.size()));
    d += w;
  }
  d += kDictionaryTail;
  return d;
}

const Bytef* bytes(std::string_view s) { return reinterpret_cast<const Bytef*>(s.data()); }

}  // namespace

std::string_view headerDictionary() {
  static const std::string dictionary = buildDictionary();
  return dictionary;
}

std::string encodeHeaderBlock(const HeaderList& headers) {
  std::string out;
  put32(out, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    put32(out, static_cast<uint32_t>(name.size()));
    out += name;
    put32(out, static_cast<uint32_t>(value.size()));
    out += value;
  }
  return out;
}

Result<HeaderList> decodeHeaderBlock(std::string_view block) {
  auto bad = [](std::string what) { return makeError("spdy header block", "", std::move(what)); };
  if (block.size() < 4) {
    return bad("shorter than its 4-byte count");
  }
  uint32_t count = get32(block, 0);
  // Each pair takes at least 8 bytes, so a count past that is a lie.
  if (count > (block.size() - 4) / 8) {
    return bad("count " + std::to_string(count) + " past what its " + std::to_string(block.size()) +
               " bytes can hold");
  }
  HeaderList out;
  out.reserve(count);
  std::set<std::string_view> seen;
  size_t at = 4;
  auto take = [&](std::string& into) -> bool {
    if (block.size() - at < 4) {
      return false;
    }
    uint32_t n = get32(block, at);
    at += 4;
    if (block.size() - at < n) {
      return false;
    }
    into.assign(block.substr(at, n));
    at += n;
    return true;
  };
  for (uint32_t i = 0; i < count; i++) {
    std::string name, value;
    if (!take(name) || !take(value)) {
      return bad("pair " + std::to_string(i) + " runs past the block's end");
    }
    if (name.empty()) {
      return bad("empty header name in pair " + std::to_string(i));
    }
    if (std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return bad("header name not in lower case: " + name);
    }
    out.emplace_back(std::move(name), std::move(value));
  }
  if (at != block.size()) {
    return bad(std::to_string(block.size() - at) + " bytes after the last pair");
  }
  for (const auto& [name, value] : out) {
    if (!seen.insert(name).second) {
      return bad("header name twice: " + name);
    }
  }
  return out;
}

std::string_view headerValue(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) {
      std::string_view value(v);
      return value.substr(0, value.find('\0'));
    }
  }
  return {};
}

HeaderDeflater::HeaderDeflater() {
  // A 2 KiB window (the dictionary fits) and a small memLevel: header blocks
  // are tiny and there is a context per connection. A peer's inflate takes
  // any window up to 32 KiB.
  ok_ = deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 11, 4, Z_DEFAULT_STRATEGY) == Z_OK;
  if (ok_) {
    auto d = headerDictionary();
    ok_ = deflateSetDictionary(&z_, bytes(d), static_cast<uInt>(d.size())) == Z_OK;
  }
}

HeaderDeflater::~HeaderDeflater() { deflateEnd(&z_); }

Result<std::string> HeaderDeflater::compress(const HeaderList& headers) {
  if (!ok_) {
    return makeError("spdy header block", "", "zlib deflate context unusable");
  }
  std::string in = encodeHeaderBlock(headers);
  std::string out;
  z_.next_in = const_cast<Bytef*>(bytes(in));  // zlib's API is not const; it only reads
  z_.avail_in = static_cast<uInt>(in.size());
  std::array<Bytef, 4096> chunk{};
  do {
    z_.next_out = chunk.data();
    z_.avail_out = chunk.size();
    int rc = deflate(&z_, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      ok_ = false;
      return makeError("spdy header block", "", "zlib deflate: error " + std::to_string(rc));
    }
    out.append(reinterpret_cast<const char*>(chunk.data()), chunk.size() - z_.avail_out);
  } while (z_.avail_out == 0);
  return out;
}

HeaderInflater::HeaderInflater(size_t max_bytes) : max_bytes_(max_bytes) {
  ok_ = inflateInit(&z_) == Z_OK;
  if (!ok_) {
    broken_ = "zlib inflate context could not be made";
  }
}

HeaderInflater::~HeaderInflater() { inflateEnd(&z_); }

std::unexpected<Error> HeaderInflater::fail(std::string what) {
  ok_ = false;
  broken_ = what;
  return makeError("spdy header block", "", std::move(what));
}

Result<std::string> HeaderInflater::inflate(std::string_view compressed) {
  if (!ok_) {
    return makeError("spdy header block", "", broken_);
  }
  std::string out;
  z_.next_in = const_cast<Bytef*>(bytes(compressed));  // read only, as above
  z_.avail_in = static_cast<uInt>(compressed.size());
  std::array<Bytef, 4096> chunk{};
  while (z_.avail_in > 0) {
    z_.next_out = chunk.data();
    z_.avail_out = chunk.size();
    int rc = ::inflate(&z_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      auto d = headerDictionary();
      if (inflateSetDictionary(&z_, bytes(d), static_cast<uInt>(d.size())) != Z_OK) {
        return fail("compressed with another dictionary than SPDY/3's");
      }
      continue;
    }
    if (rc == Z_STREAM_END) {
      return fail("the zlib stream ended inside a header block");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return fail(std::string("not a zlib stream: ") + (z_.msg != nullptr ? z_.msg : "error"));
    }
    size_t got = chunk.size() - z_.avail_out;
    if (out.size() + got > max_bytes_) {
      return fail("inflates past " + std::to_string(max_bytes_) + " bytes");
    }
    out.append(reinterpret_cast<const char*>(chunk.data()), got);
    if (rc == Z_BUF_ERROR && got == 0) {
      break;  // no progress with input left: truncated inside a deflate block
    }
  }
  // Inflate may hold output back until asked again with room (no input left).
  for (;;) {
    z_.next_out = chunk.data();
    z_.avail_out = chunk.size();
    int rc = ::inflate(&z_, Z_SYNC_FLUSH);
    size_t got = chunk.size() - z_.avail_out;
    if (rc == Z_STREAM_END) {
      return fail("the zlib stream ended inside a header block");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return fail(std::string("not a zlib stream: ") + (z_.msg != nullptr ? z_.msg : "error"));
    }
    if (out.size() + got > max_bytes_) {
      return fail("inflates past " + std::to_string(max_bytes_) + " bytes");
    }
    out.append(reinterpret_cast<const char*>(chunk.data()), got);
    if (got == 0) {
      break;
    }
  }
  if (z_.avail_in > 0) {
    return fail("truncated compressed data");
  }
  return out;
}

}  // namespace kernelet::spdy
