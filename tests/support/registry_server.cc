#include "support/registry_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "apiclient/http_client.h"
#include "images/digest.h"
#include "support/free_port.h"
#include "sys/fileio.h"

namespace kernelet::testing {

namespace fs = std::filesystem;

namespace {

bool portOpen(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{.sin_family = AF_INET, .sin_port = htons(static_cast<uint16_t>(port))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return ok;
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
    out.append(buf, n);
  }
  ::pclose(p);
  return out;
}

}  // namespace

Result<RegistryServer> RegistryServer::start(const std::string& dir, Auth auth) {
  RegistryServer s;
  s.dir_ = dir;
  s.ca_ = dir + "/cert.pem";
  s.auth_ = dir + "/docker-config.json";
  s.port_ = freeLoopbackPort();
  fs::create_directories(dir + "/storage");
  run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout " + dir +
      "/key.pem -out " + s.ca_ + " -addext subjectAltName=IP:127.0.0.1,DNS:localhost");
  std::string hash = run("htpasswd -Bbn user secret");
  std::ofstream(dir + "/htpasswd") << hash.substr(0, hash.find('\n')) << "\n";
  std::ofstream(s.auth_) << R"({"auths":{")" << s.host()
                         << R"(":{"auth":"dXNlcjpzZWNyZXQ="}}})";  // user:secret
  std::ofstream(dir + "/config.yml")
      << "version: 0.1\n"
         "log: {level: info, accesslog: {disabled: false}}\n"
         "storage: {filesystem: {rootdirectory: "
      << dir
      << "/storage}, delete: {enabled: true}}\n"
         "http: {addr: 127.0.0.1:"
      << s.port_ << ", tls: {certificate: " << s.ca_ << ", key: " << dir
      << "/key.pem}}\n"
         "";
  if (auth == Auth::kBasic) {
    std::ofstream(dir + "/config.yml", std::ios::app)
        << "auth: {htpasswd: {realm: kernelet-test, path: " << dir << "/htpasswd}}\n";
  } else {
    int token_port = freeLoopbackPort();
    run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=token-signer -keyout " + dir +
        "/token-key.pem -out " + dir + "/token-cert.pem");
    std::ofstream(dir + "/config.yml", std::ios::app)
        << "auth: {token: {realm: http://127.0.0.1:" << token_port
        << "/token, service: kernelet-registry, issuer: kernelet-test, rootcertbundle: " << dir
        << "/token-cert.pem}}\n";
    s.token_pid_ = ::fork();
    if (s.token_pid_ == 0) {
      std::string port = std::to_string(token_port);
      ::execlp("python3", "python3", KERNELET_TOKEN_SERVER, port.c_str(),
               (dir + "/token-key.pem").c_str(), (dir + "/token-cert.pem").c_str(), "kernelet-test",
               nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !portOpen(token_port); i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  s.pid_ = ::fork();
  if (s.pid_ == 0) {
    int log = ::open((dir + "/registry.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execlp("docker-registry", "docker-registry", "serve", (dir + "/config.yml").c_str(), nullptr);
    ::_exit(127);
  }
  for (int i = 0; i < 200 && !portOpen(s.port_); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!portOpen(s.port_)) {
    return makeError("start registry", dir, "not listening; its log: " + s.log());
  }
  return s;
}

RegistryServer::RegistryServer(RegistryServer&& o) noexcept
    : dir_(std::move(o.dir_)),
      ca_(std::move(o.ca_)),
      auth_(std::move(o.auth_)),
      port_(o.port_),
      pid_(std::exchange(o.pid_, -1)),
      token_pid_(std::exchange(o.token_pid_, -1)) {}

RegistryServer::~RegistryServer() {
  for (pid_t p : {pid_, token_pid_}) {
    if (p > 0) {
      ::kill(p, SIGTERM);
      ::waitpid(p, nullptr, 0);
    }
  }
}

std::string RegistryServer::log() const { return readFile(dir_ + "/registry.log").value_or(""); }

Result<void> RegistryServer::push(const std::string& layout, const std::string& repo,
                                  const std::string& tag) {
  apiclient::HttpClient http(apiclient::TlsOptions{.ca_file = ca_});
  std::string base = "https://" + host() + "/v2/" + repo;
  std::pair<std::string, std::string> auth{"Authorization", "Basic dXNlcjpzZWNyZXQ="};
  TRY(std::string index, readFile(layout + "/index.json"));
  std::smatch m;
  if (!std::regex_search(index, m, std::regex(R"re("digest":"(sha256:[0-9a-f]{64})")re"))) {
    return makeError("push", layout, "no manifest in index.json");
  }
  std::string manifest_digest = m[1];
  for (const auto& e : fs::directory_iterator(layout + "/blobs/sha256")) {
    std::string digest = "sha256:" + e.path().filename().string();
    if (digest == manifest_digest) {
      continue;
    }
    TRY(std::string data, readFile(e.path()));
    TRY(auto start,
        http.send({.method = "POST", .url = base + "/blobs/uploads/", .headers = {auth}}));
    if (start.status != 202) {
      return makeError("push: start upload", base, std::to_string(start.status) + " " + start.body);
    }
    std::string loc = start.header("location");
    loc += (loc.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
    TRY(apiclient::Url url, apiclient::resolveUrl(*apiclient::parseUrl(base), loc));
    TRY(auto put, http.send({.method = "PUT",
                             .url = url.str(),
                             .headers = {auth, {"Content-Type", "application/octet-stream"}},
                             .body = data}));
    if (put.status != 201) {
      return makeError("push: upload blob", digest, std::to_string(put.status) + " " + put.body);
    }
  }
  TRY(std::string manifest, readFile(layout + "/blobs/sha256/" + manifest_digest.substr(7)));
  TRY(auto put,
      http.send({.method = "PUT",
                 .url = base + "/manifests/" + tag,
                 .headers = {auth, {"Content-Type", "application/vnd.oci.image.manifest.v1+json"}},
                 .body = manifest}));
  if (put.status != 201) {
    return makeError("push: manifest", tag, std::to_string(put.status) + " " + put.body);
  }
  return {};
}

}  // namespace kernelet::testing
