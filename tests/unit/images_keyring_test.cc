// Which credentials go with which image (images/keyring.h), with the cases of
// the kubelet's keyring_test.go: host:port, path prefixes, globs, the forms
// of Docker Hub's key, several matches in order; and both Secret formats.
#include <gtest/gtest.h>

#include "images/keyring.h"

namespace kernelet::images {
namespace {

std::vector<std::string> users(const std::vector<RegistryCredentials>& creds) {
  std::vector<std::string> out;
  for (const auto& c : creds) {
    out.push_back(c.username);
  }
  return out;
}

using Strings = std::vector<std::string>;

DockerKeyring ring(const DockerAuths& auths) {
  DockerKeyring k;
  k.add(auths);
  return k;
}

TEST(Keyring, HostAndPortMustBothMatch) {
  auto k = ring({{"reg.example:5000", {"port", "p"}}, {"reg.example", {"plain", "p"}}});
  EXPECT_EQ(users(k.lookup("reg.example:5000/team/app")), Strings{"port"});
  EXPECT_EQ(users(k.lookup("reg.example/team/app")), Strings{"plain"});
  EXPECT_TRUE(k.lookup("reg.example:5001/team/app").empty());
  EXPECT_TRUE(k.lookup("other.example/team/app").empty());
  EXPECT_TRUE(k.lookup("sub.reg.example/app").empty()) << "a label count that differs";
}

TEST(Keyring, PathPrefixesAndTheMostSpecificFirst) {
  auto k = ring({{"reg.example", {"host", "p"}},
                 {"reg.example/team", {"team", "p"}},
                 {"reg.example/team/app", {"app", "p"}},
                 {"reg.example/other", {"other", "p"}}});
  EXPECT_EQ(users(k.lookup("reg.example/team/app")), (Strings{"app", "team", "host"}));
  EXPECT_EQ(users(k.lookup("reg.example/team/web")), (Strings{"team", "host"}));
  EXPECT_EQ(users(k.lookup("reg.example/x")), Strings{"host"});
  // A string prefix, as the kubelet's: "team" covers "teamwork".
  EXPECT_EQ(users(k.lookup("reg.example/teamwork/x")), (Strings{"team", "host"}));
}

TEST(Keyring, SchemesAndApiPathsAreTheBareHost) {
  auto k = ring({{"https://a.example/v1/", {"a", "p"}},
                 {"http://b.example/v2/", {"b", "p"}},
                 {"https://c.example:443/v2/team", {"c", "p"}},
                 {"bad key", {"x", "p"}}});
  EXPECT_EQ(users(k.lookup("a.example/x/y")), Strings{"a"});
  EXPECT_EQ(users(k.lookup("b.example/x")), Strings{"b"});
  EXPECT_EQ(users(k.lookup("c.example:443/team/app")), Strings{"c"});
  EXPECT_TRUE(k.lookup("c.example:443/other").empty());
}

TEST(Keyring, GlobsCoverOneLabelEach) {
  auto k = ring({{"*.example.com", {"star", "p"}}, {"reg?.[a-c]x.io", {"class", "p"}}});
  EXPECT_EQ(users(k.lookup("reg.example.com/app")), Strings{"star"});
  EXPECT_TRUE(k.lookup("example.com/app").empty());
  EXPECT_TRUE(k.lookup("a.reg.example.com/app").empty());
  EXPECT_EQ(users(k.lookup("reg1.bx.io/app")), Strings{"class"});
  EXPECT_TRUE(k.lookup("reg1.dx.io/app").empty());
  EXPECT_TRUE(keyMatches("*.example.com:5000/team", "r.example.com:5000/team/app"));
  EXPECT_FALSE(keyMatches("*.example.com:5000/team", "r.example.com/team/app"));
  EXPECT_FALSE(keyMatches("reg[", "reg/app")) << "a malformed glob matches nothing";
}

TEST(Keyring, SeveralCredentialsForOneKeyKeepTheirOrder) {
  DockerKeyring k;
  k.add({{"reg.example", {"first", "p"}}});
  k.add({{"https://reg.example", {"second", "p"}}});
  EXPECT_EQ(users(k.lookup("reg.example/app")), (Strings{"first", "second"}));
}

TEST(Keyring, DockerHubTakesTheIndexKey) {
  auto k = ring({{"https://index.docker.io/v1/", {"hub", "p"}}});
  EXPECT_EQ(users(k.lookup("docker.io/library/busybox")), Strings{"hub"});
  EXPECT_EQ(users(k.lookup("docker.io/user/app")), Strings{"hub"});
  EXPECT_TRUE(k.lookup("quay.io/user/app").empty());
}

TEST(Keyring, CredentialsFingerprintTellsListsApart) {
  EXPECT_EQ(credentialsFingerprint({}), "");
  std::string a = credentialsFingerprint({{"u", "p"}});
  EXPECT_EQ(a, credentialsFingerprint({{"u", "p"}}));
  EXPECT_NE(a, credentialsFingerprint({{"u", "q"}}));
  EXPECT_NE(credentialsFingerprint({{"ab", "c"}}), credentialsFingerprint({{"a", "bc"}}));
  EXPECT_TRUE(a.starts_with("sha256:"));
}

TEST(PullSecrets, DockerConfigJson) {
  auto a = secretAuths(
      kSecretTypeDockerConfigJson,
      {{".dockerconfigjson", R"({"auths":{"reg.example:5000":{"auth":"dXNlcjpzZWNyZXQ="},)"
                             R"("other.example":{"username":"u","password":"p:w","email":"e"}}})"}},
      "secret \"regcred\" in default");
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].first, "reg.example:5000");
  EXPECT_EQ((*a)[0].second.username, "user");
  EXPECT_EQ((*a)[0].second.password, "secret");
  EXPECT_EQ((*a)[1].second.password, "p:w");
}

TEST(PullSecrets, Dockercfg) {
  auto a = secretAuths(kSecretTypeDockercfg,
                       {{".dockercfg", R"({"reg.example":{"auth":"YTpiOmM=","email":"e"}})"}},
                       "secret \"old\" in default");
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].second.username, "a");
  EXPECT_EQ((*a)[0].second.password, "b:c") << "split at the first colon";
}

TEST(PullSecrets, OtherTypesAndEmptyKeysGiveNothing) {
  auto opaque = secretAuths("Opaque", {{".dockerconfigjson", "{not json"}}, "s");
  ASSERT_TRUE(opaque);
  EXPECT_TRUE(opaque->empty());
  auto wrong_key = secretAuths(kSecretTypeDockerConfigJson, {{".dockercfg", "{}"}}, "s");
  ASSERT_TRUE(wrong_key);
  EXPECT_TRUE(wrong_key->empty());
  auto empty = secretAuths(kSecretTypeDockercfg, {{".dockercfg", ""}}, "s");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto no_auths = secretAuths(kSecretTypeDockerConfigJson, {{".dockerconfigjson", "{}"}}, "s");
  ASSERT_TRUE(no_auths);
  EXPECT_TRUE(no_auths->empty());
}

TEST(PullSecrets, MalformedOnesAreErrorsNamingTheSecretNotTheCredential) {
  const std::string what = "secret \"regcred\" in default";
  struct Case {
    const char* type;
    std::string text;
    std::string error;
  } cases[] = {
      {kSecretTypeDockerConfigJson, R"({"auths":{"r":{"auth":"c2VjcmV0"}}})",
       "read registry credentials of `secret \"regcred\" in default .dockerconfigjson`: "
       "auths.r.auth: unable to parse auth field, must be formatted as base64(username:password)"},
      {kSecretTypeDockerConfigJson, R"({"auths":{"r":{"auth":"!!secret!!"}}})",
       "read registry credentials of `secret \"regcred\" in default .dockerconfigjson`: "
       "auths.r.auth: not base64"},
      {kSecretTypeDockerConfigJson, R"({"auths":{"r":{"username":7}}})",
       "read registry credentials of `secret \"regcred\" in default .dockerconfigjson`: "
       "auths.r.username: must be a string"},
      {kSecretTypeDockerConfigJson, R"({"auths":["r"]})",
       "read registry credentials of `secret \"regcred\" in default .dockerconfigjson`: "
       "auths: must be an object"},
      {kSecretTypeDockercfg, R"({"r":"secret"})",
       "read registry credentials of `secret \"regcred\" in default .dockercfg`: "
       "r: must be an object"},
  };
  for (const auto& c : cases) {
    std::string key =
        std::string(c.type) == kSecretTypeDockercfg ? ".dockercfg" : ".dockerconfigjson";
    auto a = secretAuths(c.type, {{key, c.text}}, what);
    ASSERT_FALSE(a) << c.text;
    EXPECT_EQ(a.error().message(), c.error);
    EXPECT_EQ(a.error().message().find("c2VjcmV0"), std::string::npos);
  }
  auto garbage = secretAuths(kSecretTypeDockercfg, {{".dockercfg", "{\"r\": secret"}}, what);
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message().find("`secret \"regcred\" in default .dockercfg`"),
            std::string::npos)
      << garbage.error().message();
}

}  // namespace
}  // namespace kernelet::images
