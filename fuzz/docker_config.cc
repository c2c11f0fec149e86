// Registry credentials: Docker's config.json (images/registry.h) and the
// pull secrets' .dockerconfigjson and .dockercfg with the keyring's matching
// (images/keyring.h). An input with a newline also feeds its first line as a
// key and the rest as an image to the key matcher (globs).

#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "images/keyring.h"
#include "images/registry.h"

static std::string scratch;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  scratch = kernelet::fuzz::confineToScratch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace img = kernelet::images;
  std::string text(reinterpret_cast<const char*>(data), size);
  kernelet::fuzz::writeFileOrDie(scratch + "/config.json", text);
  (void)img::loadDockerConfig(scratch + "/config.json");
  img::DockerKeyring keyring;
  for (const char* type : {img::kSecretTypeDockerConfigJson, img::kSecretTypeDockercfg}) {
    auto auths = img::secretAuths(
        type, {{img::kDockerConfigJsonKey, text}, {img::kDockercfgKey, text}}, "fuzz");
    if (auths) {
      keyring.add(*auths);
      for (const auto& [key, creds] : *auths) {
        (void)keyring.lookup(key);
        (void)img::keyMatches(key, key + "/library/x");
      }
    }
  }
  for (const char* image : {"docker.io/library/busybox", "reg.example:5000/team/app",
                            "a.b.example/x/y", "127.0.0.1:5000/app"}) {
    (void)keyring.lookup(image);
  }
  if (size_t nl = text.find('\n'); nl != std::string::npos) {
    (void)img::keyMatches(text.substr(0, nl), text.substr(nl + 1));
    img::DockerKeyring one;
    one.add({{text.substr(0, nl), {"u", "p"}}});
    (void)one.lookup(text.substr(nl + 1));
  }
  return 0;
}
