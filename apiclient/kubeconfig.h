#pragma once
// The credentials and address of an API server, from a kubeconfig file read as
// client-go reads it, or from the in-cluster service account.

#include <string>

#include "sys/result.h"

namespace kernelet::apiclient {

struct ClusterAccess {
  std::string server;  // https://host:port
  std::string ca_pem;  // certificate-authority(-data); empty: the system's roots
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;
  std::string client_cert_pem;  // client-certificate(-data)
  std::string client_key_pem;   // client-key(-data)
  std::string token;            // a bearer token...
  std::string token_file;       // ...or a file to read it from (re-read every minute)
  std::string namespace_;       // the context's namespace, "default" if none
};

// Reads a kubeconfig: `context` (empty: current-context) picks the cluster and
// user. -data fields are base64; relative paths resolve against the file's
// folder; referenced files are read now. Errors name the file and the field.
// exec and auth-provider users are refused by name (not supported yet).
Result<ClusterAccess> loadKubeconfig(const std::string& path, const std::string& context = "");

}  // namespace kernelet::apiclient
