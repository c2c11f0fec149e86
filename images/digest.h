#pragma once
// sha256 digests in the OCI form "sha256:<64 hex>", computed incrementally.

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "sys/result.h"

namespace kernelet::images {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // "sha256:..." of everything fed so far.
  std::string digest();

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

std::string sha256Of(std::string_view data);

// Checks the form "sha256:<64 lowercase hex>"; the error names what was given.
Result<void> validateDigest(const std::string& digest);
// The hex part of a valid digest.
inline std::string digestHex(const std::string& digest) { return digest.substr(7); }

}  // namespace kernelet::images
