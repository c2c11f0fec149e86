#pragma once
// The node server's TLS: the serving certificate (--tls-cert-file and
// --tls-private-key-file, else a self-signed one kept in --cert-dir as the
// kubelet keeps it: kubelet.crt and kubelet.key, the key 0600, both written
// atomically, reused on restart unless missing, unreadable or expired), the
// protocol floor (tlsMinVersion) and cipher suites (tlsCipherSuites, Go's
// names), and client certificates: requested, optional, and checked against
// --client-ca-file after the handshake, so a certificate from another CA gets
// a 401 rather than a failed handshake.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/server/authn.h"
#include "sys/result.h"

struct ssl_st;

namespace boost::asio::ssl {
class context;
}

namespace kernelet::agent::server {

struct TlsOptions {
  std::string cert_file, key_file;           // both or neither
  std::string cert_dir;                      // for the self-signed pair when neither is given
  std::string node_name;                     // the self-signed certificate's DNS name
  std::vector<std::string> ips;              // and IP addresses
  std::string min_version = "VersionTLS12";  // or VersionTLS13
  std::vector<std::string> cipher_suites;    // Go names; empty: OpenSSL's defaults
  std::string client_ca_file;                // empty: no client certificates
};

// The cert and key files the server uses: the given ones, or the self-signed
// pair in cert_dir (made when missing, unreadable or expired).
struct ServingFiles {
  std::string cert_file, key_file;
  bool generated = false;  // written now
};
Result<ServingFiles> ensureServingCert(const TlsOptions& options);

// A server context: certificate, key (checked to match), protocol floor,
// ciphers, the client CA.
Result<std::unique_ptr<boost::asio::ssl::context>> makeServerContext(const TlsOptions& options);

// Go's cipher suite name -> OpenSSL's (TLS 1.2) or the TLS 1.3 suite name; nullopt: unknown.
std::optional<std::string> openSslCipherName(const std::string& go_name);
// Refuses an unknown cipher suite or minimum version, naming it and `what`.
Result<void> checkTlsSettings(const std::string& min_version,
                              const std::vector<std::string>& cipher_suites);

// What the client's certificate says, after the handshake.
Credentials peerCredentials(ssl_st* ssl);

}  // namespace kernelet::agent::server
