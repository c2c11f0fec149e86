#include "agent/server/tls.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>
#include <cerrno>
#include <ctime>
#include <map>

#include "sys/fileio.h"

namespace kernelet::agent::server {
namespace {

std::string sslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

const std::map<std::string, std::string>& cipherNames() {
  // Go's crypto/tls names, as the kubelet's --tls-cipher-suites takes them.
  static const std::map<std::string, std::string> names = {
      {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
      {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
      {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
      {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
      {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
      {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
      {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
      {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"},
      {"TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"},
      {"TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256"},
  };
  return names;
}

bool isTls13Suite(const std::string& name) { return name.rfind("TLS_", 0) == 0; }

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

// The PEM pair in `cert_file`/`key_file` is usable: both parse, the key is
// the certificate's, and it has not expired.
bool usablePair(const std::string& cert_file, const std::string& key_file) {
  auto cert_pem = readFile(cert_file);
  auto key_pem = readFile(key_file);
  if (!cert_pem || !key_pem) {
    return false;
  }
  BioPtr cb(BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size())));
  BioPtr kb(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
  X509Ptr cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  PkeyPtr key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!cert || !key || X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  return X509_cmp_current_time(X509_get0_notAfter(cert.get())) > 0;
}

std::string pem(int (*write)(BIO*, void*), void* what) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!write(bio.get(), what)) {
    return "";
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

// The kubelet's self-signed serving certificate: CN node@unix-time, valid a
// year, the node's name and addresses as subject alternative names.
Result<std::pair<std::string, std::string>> selfSigned(const TlsOptions& o) {
  PkeyPtr key(EVP_RSA_gen(2048));
  X509Ptr cert(X509_new());
  if (!key || !cert) {
    return makeError("generate serving certificate", o.cert_dir, sslErrors());
  }
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);  // clock skew
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  std::string cn = o.node_name + "@" + std::to_string(::time(nullptr));
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san = "DNS:" + o.node_name;
  for (const auto& ip : o.ips) {
    san += ",IP:" + ip;
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair{NID_subject_alt_name, san},
        std::pair{NID_key_usage, std::string("critical,digitalSignature,"
                                             "keyEncipherment,keyCertSign")},
        std::pair{NID_ext_key_usage, std::string("serverAuth")},
        std::pair{NID_basic_constraints, std::string("critical,CA:TRUE")}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) {
      return makeError("generate serving certificate", o.cert_dir,
                       "extension " + value + ": " + sslErrors());
    }
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return makeError("sign serving certificate", o.cert_dir, sslErrors());
  }
  std::string cert_pem =
      pem([](BIO* b, void* c) { return PEM_write_bio_X509(b, static_cast<X509*>(c)); }, cert.get());
  std::string key_pem = pem(
      [](BIO* b, void* k) {
        return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(k), nullptr, nullptr, 0, nullptr,
                                        nullptr);
      },
      key.get());
  if (cert_pem.empty() || key_pem.empty()) {
    return makeError("encode serving certificate", o.cert_dir, sslErrors());
  }
  return std::pair{cert_pem, key_pem};
}

}  // namespace

std::optional<std::string> openSslCipherName(const std::string& go_name) {
  auto it = cipherNames().find(go_name);
  return it == cipherNames().end() ? std::nullopt : std::optional(it->second);
}

Result<void> checkTlsSettings(const std::string& min_version,
                              const std::vector<std::string>& cipher_suites) {
  if (min_version != "VersionTLS12" && min_version != "VersionTLS13") {
    return makeError("tlsMinVersion (--tls-min-version)", min_version,
                     "unsupported TLS version (VersionTLS12 or VersionTLS13)");
  }
  for (const auto& c : cipher_suites) {
    if (!openSslCipherName(c)) {
      return makeError("tlsCipherSuites (--tls-cipher-suites)", c,
                       "unknown or insecure cipher suite");
    }
  }
  return {};
}

Result<ServingFiles> ensureServingCert(const TlsOptions& o) {
  if (!o.cert_file.empty() || !o.key_file.empty()) {
    if (o.cert_file.empty() || o.key_file.empty()) {
      return makeError("--tls-cert-file/--tls-private-key-file", "",
                       "give both or neither (else a self-signed pair is made in --cert-dir)");
    }
    return ServingFiles{o.cert_file, o.key_file, false};
  }
  ServingFiles f{o.cert_dir + "/kubelet.crt", o.cert_dir + "/kubelet.key", false};
  if (usablePair(f.cert_file, f.key_file)) {
    return f;
  }
  if (::mkdir(o.cert_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return sysError("mkdir", o.cert_dir);
  }
  TRY(auto pair, selfSigned(o));
  // The key first: a crash between the two leaves a pair that does not
  // match, which the next start regenerates.
  TRY_VOID(writeFileAtomic(f.key_file, pair.second, 0600));
  TRY_VOID(writeFileAtomic(f.cert_file, pair.first, 0644));
  f.generated = true;
  return f;
}

Result<std::unique_ptr<boost::asio::ssl::context>> makeServerContext(const TlsOptions& o) {
  TRY_VOID(checkTlsSettings(o.min_version, o.cipher_suites));
  TRY(ServingFiles files, ensureServingCert(o));
  auto ctx = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  SSL_CTX_set_min_proto_version(c,
                                o.min_version == "VersionTLS13" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(
      c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections give their buffers back (1,000 of them stay small).
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  if (!o.cipher_suites.empty()) {
    std::string tls12, tls13;
    for (const auto& name : o.cipher_suites) {
      std::string ossl = openSslCipherName(name).value_or("");  // checked above
      std::string& list = isTls13Suite(ossl) ? tls13 : tls12;
      list += (list.empty() ? "" : ":") + ossl;
    }
    if (!tls12.empty() && SSL_CTX_set_cipher_list(c, tls12.c_str()) != 1) {
      return makeError("tlsCipherSuites", tls12, sslErrors());
    }
    if (!tls13.empty() && SSL_CTX_set_ciphersuites(c, tls13.c_str()) != 1) {
      return makeError("tlsCipherSuites", tls13, sslErrors());
    }
  }
  if (SSL_CTX_use_certificate_chain_file(c, files.cert_file.c_str()) != 1) {
    return makeError("load serving certificate", files.cert_file, sslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(c, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return makeError("load serving key", files.key_file, sslErrors());
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return makeError("load serving key", files.key_file,
                     "does not match the certificate " + files.cert_file);
  }
  if (!o.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(c, o.client_ca_file.c_str(), nullptr) != 1) {
      return makeError("load client CA (--client-ca-file)", o.client_ca_file, sslErrors());
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca_file.c_str());
    if (names == nullptr) {
      return makeError("load client CA (--client-ca-file)", o.client_ca_file, sslErrors());
    }
    SSL_CTX_set_client_CA_list(c, names);
    // Requested, optional, and never fatal to the handshake: the verdict is
    // read afterwards (peerCredentials), so another CA's cert gets a 401.
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
    // With peer verification on, OpenSSL refuses to resume a session that has
    // no session id context (alert 80 to a client that resumes, as curl does).
    static const unsigned char kContext[] = "kernelet";
    SSL_CTX_set_session_id_context(c, kContext, sizeof kContext - 1);
  }
  return ctx;
}

Credentials peerCredentials(SSL* ssl) {
  Credentials creds;
  X509Ptr cert(SSL_get1_peer_certificate(ssl));
  if (!cert) {
    return creds;
  }
  creds.cert_present = true;
  long verdict = SSL_get_verify_result(ssl);
  creds.cert_verified = verdict == X509_V_OK;
  if (!creds.cert_verified) {
    creds.cert_error = X509_verify_cert_error_string(verdict);
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  auto text = [](X509_NAME_ENTRY* e) {
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    std::string s = len > 0 ? std::string(reinterpret_cast<char*>(utf8), len) : "";
    OPENSSL_free(utf8);
    return s;
  };
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
    creds.cert_cn = text(X509_NAME_get_entry(subject, i));  // the last CN, as Go's
  }
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_organizationName, i)) >= 0;) {
    creds.cert_orgs.push_back(text(X509_NAME_get_entry(subject, i)));
  }
  return creds;
}

}  // namespace kernelet::agent::server
