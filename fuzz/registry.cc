// A registry's answers to a manifest pull (images/registry.h): the 401's
// WWW-Authenticate challenge, the token server's answer, the manifest. Input:
// challenge, token body, manifest body, separated by "#--#" lines; "@REALM@"
// in the challenge becomes the fake token server's URL. An empty challenge:
// the manifest is served without auth. Credentials come from a Docker
// config.json, so Basic and Bearer-with-Basic are taken too. Network confined
// to a namespace's loopback: a realm the fuzzer makes up reaches nothing.

#include "images/registry.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz/fuzz_support.h"
#include "fuzz/loopback_server.h"
#include "images/reference.h"

namespace img = kernelet::images;

static kernelet::fuzz::LoopbackServer* server;
static std::string docker_config;

static std::string answer(const std::string& status, const std::string& headers,
                          const std::string& body) {
  return "HTTP/1.1 " + status + "\r\n" + headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string scratch = kernelet::fuzz::confineToScratch();
  kernelet::fuzz::confineToLoopback();
  server = new kernelet::fuzz::LoopbackServer;  // lives until exit
  docker_config = scratch + "/config.json";
  // user:pass for this registry.
  kernelet::fuzz::writeFileOrDie(docker_config, R"({"auths":{"127.0.0.1:)" +
                                                    std::to_string(server->port()) +
                                                    R"(":{"auth":"dXNlcjpwYXNz"}}})");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = kernelet::fuzz::splitParts(data, size, 3);
  std::string base = "http://127.0.0.1:" + std::to_string(server->port());
  std::string challenge = parts[0];
  for (size_t at = 0; (at = challenge.find("@REALM@", at)) != std::string::npos;) {
    challenge.replace(at, 7, base + "/token");
  }
  server->respondWith([&](const std::string& head) {
    std::string line = head.substr(0, head.find('\r'));
    if (line.find(" /token") != std::string::npos) {
      return answer("200 OK", "Content-Type: application/json\r\n", parts[1]);
    }
    bool authorized = ::strcasestr(head.c_str(), "\nAuthorization:") != nullptr;
    if (!challenge.empty() && !authorized) {
      return answer("401 Unauthorized", "WWW-Authenticate: " + challenge + "\r\n", "");
    }
    return answer("200 OK", "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n",
                  parts[2]);
  });
  auto ref = img::parseReference("127.0.0.1:" + std::to_string(server->port()) + "/fuzz/app:v1");
  if (!ref) {
    __builtin_trap();
  }
  auto registry = img::Registry::open(*ref, {.docker_config = docker_config, .plain_http = true});
  if (registry) {
    (void)registry->manifest("v1");
  }
  server->respondWith({});
  return 0;
}
