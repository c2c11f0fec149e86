#include "images/digest.h"

#include <cstdio>

namespace kernelet::images {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
  EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
}

void Sha256::update(const void* data, size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }

std::string Sha256::digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_.get(), md, &len);
  std::string out = "sha256:";
  char hex[3];
  for (unsigned i = 0; i < len; i++) {
    std::snprintf(hex, sizeof hex, "%02x", md[i]);
    out += hex;
  }
  return out;
}

std::string sha256Of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.digest();
}

Result<void> validateDigest(const std::string& digest) {
  bool ok = digest.size() == 71 && digest.starts_with("sha256:");
  for (size_t i = 7; ok && i < digest.size(); i++) {
    char c = digest[i];
    ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  }
  if (!ok) {
    return makeError("digest", digest, "expected sha256:<64 lowercase hex digits>");
  }
  return {};
}

}  // namespace kernelet::images
