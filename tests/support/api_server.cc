#include "support/api_server.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>
#include <vector>

#include "apiclient/http_client.h"
#include "support/free_port.h"

namespace kernelet::testing {
namespace {

namespace fs = std::filesystem;

Result<void> sh(const std::string& cmd) {
  if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) {
    return makeError("run", cmd, "failed");
  }
  return {};
}

// The CA, the server's and the clients' keys and certificates, in `d`.
Result<void> generateCredentials(const std::string& d) {
  TRY_VOID(sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout " + d +
              "ca.key -out " + d + "ca.crt"));
  TRY_VOID(sh("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + d +
              "server.key -out " + d + "server.csr"));
  std::ofstream(d + "ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  TRY_VOID(sh("openssl x509 -req -in " + d + "server.csr -CA " + d + "ca.crt -CAkey " + d +
              "ca.key -CAcreateserial -days 2 -extfile " + d + "ext -out " + d + "server.crt"));
  TRY_VOID(sh("openssl req -newkey rsa:2048 -nodes -subj /CN=admin -keyout " + d +
              "client.key -out " + d + "client.csr"));
  TRY_VOID(sh("openssl x509 -req -in " + d + "client.csr -CA " + d + "ca.crt -CAkey " + d +
              "ca.key -CAcreateserial -days 2 -out " + d + "client.crt"));
  // The real API server's --kubelet-client-certificate, as kubeadm makes it.
  TRY_VOID(
      sh("openssl req -newkey rsa:2048 -nodes -subj "
         "/O=system:masters/CN=kube-apiserver-kubelet-client -keyout " +
         d + "kubelet-client.key -out " + d + "kubelet-client.csr"));
  TRY_VOID(sh("openssl x509 -req -in " + d + "kubelet-client.csr -CA " + d + "ca.crt -CAkey " + d +
              "ca.key -CAcreateserial -days 2 -out " + d + "kubelet-client.crt"));
  return {};
}

// Generated once per test process and copied to each server's dir: four RSA
// keys cost seconds under the test VM's emulation, and a suite that starts a
// server per case would pay them every time. The directory goes at exit (not
// in forked children, which share the static).
class CredentialCache {
 public:
  ~CredentialCache() {
    if (!dir_.empty() && ::getpid() == owner_) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  Result<void> copyTo(const std::string& d) {
    if (dir_.empty()) {
      char tmpl[] = "/tmp/kernelet-apiserver-pki-XXXXXX";
      if (::mkdtemp(tmpl) == nullptr) {
        return makeError("mkdtemp", tmpl, "cannot create the credentials' directory");
      }
      owner_ = ::getpid();
      dir_ = tmpl;
      if (auto r = generateCredentials(dir_ + "/"); !r) {
        std::error_code ec;
        fs::remove_all(dir_, ec);
        dir_.clear();
        return r;
      }
    }
    for (const char* f : {"ca.key", "ca.crt", "server.key", "server.crt", "client.key",
                          "client.crt", "kubelet-client.key", "kubelet-client.crt"}) {
      std::error_code ec;
      fs::copy_file(dir_ + "/" + f, d + f, fs::copy_options::overwrite_existing, ec);
      if (ec) {
        return makeError("copy", d + f, ec.message());
      }
    }
    return {};
  }

 private:
  std::string dir_;
  pid_t owner_ = -1;
};

}  // namespace

Result<ApiServer> ApiServer::start(const std::string& dir, Options options) {
  static CredentialCache credentials;
  ApiServer s;
  s.dir_ = dir;
  s.options_ = std::move(options);
  s.port_ = freeLoopbackPort();
  fs::create_directories(dir);
  std::string d = dir + "/";
  TRY_VOID(credentials.copyTo(d));
  s.writeAccessFiles();
  std::ofstream(d + "kubeconfig")
      << "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n"
         "  cluster: {server: \""
      << s.url() << "\", certificate-authority: " << d
      << "ca.crt}\nusers:\n- name: admin\n  user: {token: admin-token}\n"
         "contexts:\n- name: test\n  context: {cluster: test, user: "
         "admin}\ncurrent-context: test\n";
  TRY_VOID(s.launch());
  return s;
}

namespace {

// A JSON string (the names tests give are plain, but quote them right anyway).
std::string quoted(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

// users.csv in the real API server's token file form, policy.json in the
// form tests/apiserver/access.py reads.
void ApiServer::writeAccessFiles() const {
  std::ofstream users(dir_ + "/users.csv");
  for (const auto& u : options_.users) {
    std::string groups;
    for (const auto& g : u.groups) {
      groups += (groups.empty() ? "" : ",") + g;
    }
    users << u.token << "," << u.name << "," << u.uid << ",\"" << groups << "\"\n";
  }
  std::ofstream policy(dir_ + "/policy.json");
  policy << "{\"rules\": [";
  const char* sep = "";
  for (const auto& r : options_.policy) {
    policy << sep << "{";
    const char* field_sep = "";
    for (const auto& [k, v] : {std::pair{"user", r.user},
                               {"group", r.group},
                               {"verb", r.verb},
                               {"resource", r.resource},
                               {"subresource", r.subresource},
                               {"name", r.name},
                               {"namespace", r.namespace_}}) {
      if (!v.empty()) {
        policy << field_sep << quoted(k) << ": " << quoted(v);
        field_sep = ", ";
      }
    }
    policy << "}";
    sep = ", ";
  }
  policy << "]}\n";
}

Result<void> ApiServer::launch() {
  std::string d = dir_ + "/";
  std::vector<std::string> args = {"python3",
                                   KERNELET_APISERVER,
                                   "--port",
                                   std::to_string(port_),
                                   "--cert",
                                   d + "server.crt",
                                   "--key",
                                   d + "server.key",
                                   "--client-ca",
                                   d + "ca.crt",
                                   "--token",
                                   "admin-token=admin",
                                   "--readonly-token",
                                   "reader-token=reader",
                                   "--schemas",
                                   KERNELET_OPENAPI,
                                   "--state",
                                   d + "state.json",
                                   "--bookmark-seconds",
                                   std::to_string(options_.bookmark_seconds),
                                   "--kubelet-client-cert",
                                   d + "kubelet-client.crt",
                                   "--kubelet-client-key",
                                   d + "kubelet-client.key",
                                   "--token-auth-file",
                                   d + "users.csv",
                                   "--authz-policy",
                                   d + "policy.json"};
  if (options_.token_ttl > 0) {
    args.push_back("--token-ttl");
    args.push_back(std::to_string(options_.token_ttl));
  }
  if (!options_.validate_agent.empty()) {
    args.push_back("--validate-agent");
    args.push_back(options_.validate_agent);
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    FILE* log = std::fopen((d + "apiserver.log").c_str(), "a");
    ::dup2(fileno(log), 1);
    ::dup2(fileno(log), 2);
    ::execvp("python3", argv.data());
    ::_exit(127);
  }
  // Ready once it answers. Loading the OpenAPI schemas took over 60 s in the
  // test VM on a loaded host (its cluster tests failed there, before and
  // after the tier ran two tests at a time); an exit ends the wait at once.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (std::chrono::steady_clock::now() < deadline) {
    if (control("requests", "", false)) {
      return {};
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return makeError("start test API server", d + "apiserver.log",
                       "exited with status " + std::to_string(status));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return makeError("start test API server", d + "apiserver.log", "no answer in 180 s");
}

ApiServer::ApiServer(ApiServer&& o) noexcept
    : dir_(std::move(o.dir_)), options_(std::move(o.options_)), port_(o.port_), pid_(o.pid_) {
  o.pid_ = -1;
}

ApiServer::~ApiServer() { kill(); }

void ApiServer::kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

Result<void> ApiServer::restart() {
  kill();
  return launch();
}

std::string ApiServer::kubectl(const std::string& args) const {
  std::string cmd = "KUBECONFIG=" + kubeconfig() + " kubectl " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    return "popen failed";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    out.append(buf, n);
  }
  ::pclose(p);
  return out;
}

Result<std::string> ApiServer::control(const std::string& what, const std::string& query,
                                       bool post) {
  apiclient::HttpClient client(apiclient::TlsOptions{.ca_file = caFile()}, std::chrono::seconds(5));
  TRY(auto r, client.send({.method = post ? "POST" : "GET",
                           .url = url() + "/__control/" + what + (query.empty() ? "" : "?" + query),
                           .body = post ? "{}" : ""}));
  if (r.status != 200) {
    return makeError("control", what, "status " + std::to_string(r.status));
  }
  return r.body;
}

}  // namespace kernelet::testing
