#include "apiclient/gzip.h"

#include <zlib.h>

namespace kernelet::apiclient {

Result<std::string> gunzip(const std::string& data, const std::string& where) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {  // 16: gzip framing
    return makeError("gunzip", where, "inflateInit2 failed");
  }
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[64 * 1024];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&z);
      return makeError("gunzip", where, z.msg != nullptr ? z.msg : "corrupt gzip body");
    }
    out.append(buf, sizeof buf - z.avail_out);
    if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
      inflateEnd(&z);
      return makeError("gunzip", where, "truncated gzip body");
    }
  }
  inflateEnd(&z);
  return out;
}

}  // namespace kernelet::apiclient
