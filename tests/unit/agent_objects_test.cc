// ConfigMaps, Secrets and tokens in a pod: how the manifest names them, the
// volumes written from them (the ..data swap, modes, tmpfs), their updates,
// and the kubelet's errors when one is missing.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/model/pod.h"
#include "agent/runtime/atomic_writer.h"
#include "agent/runtime/volumes.h"
#include "agent/sources/pod_objects.h"
#include "support/temp_dir.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int modeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

// What the API holds, as the cluster's cache would report it.
class FakeObjects : public PodObjects {
 public:
  std::map<ObjectRef, ObjectData> objects;
  std::map<TokenRef, Result<std::string>> tokens;
  std::vector<ObjectRef> asked;

  std::optional<ObjectData> object(const ObjectRef& ref) override {
    asked.push_back(ref);
    auto it = objects.find(ref);
    if (it == objects.end()) {
      return std::nullopt;
    }
    return it->second;
  }
  std::optional<Result<std::string>> token(const TokenRef& ref) override {
    auto it = tokens.find(ref);
    if (it == tokens.end()) {
      return std::nullopt;
    }
    return it->second;
  }
  void set(ObjectRef::Kind kind, const std::string& name, std::map<std::string, std::string> data) {
    objects[{kind, "default", name}] = {true, std::move(data)};
  }
  void missing(ObjectRef::Kind kind, const std::string& name) {
    objects[{kind, "default", name}] = {false, {}};
  }
};

const char* kPod = R"(apiVersion: v1
kind: Pod
metadata: {name: app, namespace: default, uid: u-1}
spec:
  serviceAccountName: runner
  containers:
  - name: c
    image: busybox
    envFrom:
    - configMapRef: {name: settings}
      prefix: CFG_
    - secretRef: {name: creds, optional: true}
    env:
    - name: LEVEL
      valueFrom: {configMapKeyRef: {name: settings, key: level}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password, optional: true}}
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: sec, mountPath: /etc/sec}
    - {name: api, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}
  volumes:
  - name: cfg
    configMap:
      name: settings
      items: [{key: level, path: conf/level, mode: 0600}]
  - name: sec
    secret: {secretName: creds, defaultMode: 0400}
  - name: api
    projected:
      defaultMode: 420
      sources:
      - serviceAccountToken: {expirationSeconds: 3607, path: token, audience: vault}
      - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
      - downwardAPI: {items: [{path: namespace, fieldRef: {fieldPath: metadata.namespace}}]}
)";

Pod parse(const std::string& text) {
  auto pods = parseManifests(text, "pod.yaml");
  EXPECT_TRUE(pods) << pods.error().message();
  return pods && !pods->empty() ? (*pods)[0].pod : Pod{};
}

TEST(PodObjectsManifest, DecodesEveryWayAPodNamesConfigMapsSecretsAndTokens) {
  Pod p = parse(kPod);
  EXPECT_EQ(p.service_account_name, "runner");
  const Container& c = p.containers[0];
  ASSERT_EQ(c.env_from.size(), 2u);
  EXPECT_EQ(c.env_from[0].config_map, "settings");
  EXPECT_EQ(c.env_from[0].prefix, "CFG_");
  EXPECT_EQ(c.env_from[1].secret, "creds");
  EXPECT_TRUE(c.env_from[1].optional);
  ASSERT_TRUE(c.env[0].config_map_key);
  EXPECT_EQ(c.env[0].config_map_key->key, "level");
  ASSERT_TRUE(c.env[1].secret_key);
  EXPECT_TRUE(c.env[1].secret_key->optional);

  ASSERT_EQ(p.volumes.size(), 3u);
  EXPECT_EQ(p.volumes[0].kind, Volume::Kind::kConfigMap);
  EXPECT_EQ(p.volumes[0].sources[0].items[0].path, "conf/level");
  EXPECT_EQ(p.volumes[0].sources[0].items[0].mode, 0600);  // YAML's 0600 is octal
  EXPECT_EQ(p.volumes[1].kind, Volume::Kind::kSecret);
  EXPECT_EQ(p.volumes[1].sources[0].name, "creds");
  EXPECT_EQ(p.volumes[1].default_mode, 0400);
  const Volume& api = p.volumes[2];
  EXPECT_EQ(api.kind, Volume::Kind::kProjected);
  EXPECT_EQ(api.default_mode, 0644);  // JSON's 420
  ASSERT_EQ(api.sources.size(), 3u);
  EXPECT_EQ(api.sources[0].kind, Projection::Kind::kServiceAccountToken);
  EXPECT_EQ(api.sources[0].expiration_seconds, 3607);
  EXPECT_EQ(api.sources[0].audience, "vault");

  PodRefs refs = podRefs(p);
  std::vector<ObjectRef> want = {{ObjectRef::Kind::kConfigMap, "default", "settings"},
                                 {ObjectRef::Kind::kSecret, "default", "creds"},
                                 {ObjectRef::Kind::kConfigMap, "default", "kube-root-ca.crt"}};
  EXPECT_EQ(refs.objects, want);  // each once, though named four times
  ASSERT_EQ(refs.tokens.size(), 1u);
  EXPECT_EQ(refs.tokens[0].service_account, "runner");
  EXPECT_EQ(refs.tokens[0].pod_uid, "u-1");
}

TEST(PodObjectsManifest, BadReferencesAreErrorsNamingTheField) {
  auto error = [](const std::string& volumes) {
    std::string text =
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, "
        "image: i}]\n  volumes:\n" +
        volumes;
    auto r = parseManifests(text, "p.yaml");
    return r ? std::string("parsed") : r.error().message();
  };
  EXPECT_NE(error("  - {name: v, configMap: {name: x, items: [{key: k, path: ../etc/passwd}]}}\n")
                .find("spec.volumes[0].configMap.items[0].path: must be a relative path"),
            std::string::npos);
  EXPECT_NE(
      error("  - {name: v, secret: {}}\n").find("spec.volumes[0].secret.secretName: required"),
      std::string::npos);
  EXPECT_NE(error("  - {name: v, secret: {secretName: s, defaultMode: 01000}}\n")
                .find("spec.volumes[0].secret.defaultMode: must be a number between 0 and 0777"),
            std::string::npos);
  EXPECT_NE(error("  - name: v\n    projected:\n      sources:\n      - serviceAccountToken: "
                  "{path: t, expirationSeconds: 60}\n")
                .find("serviceAccountToken.expirationSeconds: may not specify a duration less "
                      "than 10 minutes"),
            std::string::npos);
  EXPECT_NE(error("  - name: v\n    projected:\n      sources:\n      - {}\n")
                .find("needs configMap, secret, downwardAPI or serviceAccountToken"),
            std::string::npos);
}

TEST(PodObjectsPending, APodWaitsUntilEveryObjectAndTokenIsKnown) {
  Pod p = parse(kPod);
  FakeObjects api;
  auto waiting = pendingRefs(p, api);
  EXPECT_EQ(waiting.size(), 4u);
  api.set(ObjectRef::Kind::kConfigMap, "settings", {{"level", "debug"}});
  api.missing(ObjectRef::Kind::kSecret, "creds");  // known: it does not exist
  api.set(ObjectRef::Kind::kConfigMap, "kube-root-ca.crt", {{"ca.crt", "PEM"}});
  waiting = pendingRefs(p, api);
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting[0], "token of serviceaccount default/runner");
  api.tokens[podRefs(p).tokens[0]] = std::string("jwt");
  EXPECT_TRUE(pendingRefs(p, api).empty());
}

// A change reaches only the pods that name what changed (the agent's loop
// asks every pod; re-reading volumes for the others grew with the node).
TEST(PodObjectsChanged, APodHearsOfWhatItNamesOnly) {
  Pod p = parse(kPod);
  PodRefs mine = podRefs(p);
  EXPECT_TRUE(refersToAny(mine, {{{ObjectRef::Kind::kSecret, "default", "creds"}}, {}}));
  EXPECT_TRUE(refersToAny(mine, {{}, {mine.tokens[0]}}));
  // Same name, other kind or namespace: somebody else's.
  EXPECT_FALSE(refersToAny(mine, {{{ObjectRef::Kind::kConfigMap, "default", "creds"},
                                   {ObjectRef::Kind::kSecret, "other", "creds"}},
                                  {}}));
  TokenRef another_pods = mine.tokens[0];
  another_pods.pod_uid = "u-2";
  EXPECT_FALSE(refersToAny(mine, {{}, {another_pods}}));
  EXPECT_FALSE(refersToAny(mine, {}));
}

TEST(ObjectData, TheKubeletsErrorsForMissingObjects) {
  FakeObjects api;
  api.missing(ObjectRef::Kind::kConfigMap, "gone");
  ObjectRef gone{ObjectRef::Kind::kConfigMap, "default", "gone"};
  auto r = objectData(&api, gone, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "configmap \"gone\" not found");
  auto opt = objectData(&api, gone, true);
  ASSERT_TRUE(opt);
  EXPECT_TRUE(opt->empty());
  auto standalone = objectData(nullptr, gone, false);
  ASSERT_FALSE(standalone);
  EXPECT_NE(standalone.error().message().find("run with --kubeconfig"), std::string::npos);
}

TEST(AtomicWriter, SwapsTheWholeSetAndCleansUpTheOldOne) {
  TempDir d;
  std::string dir = d.path() + "/vol";
  fs::create_directories(dir);
  auto first = writeAtomically(dir, {{"a", {"1", 0644}}, {"sub/b", {"2", 0600}}});
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_TRUE(*first);
  EXPECT_EQ(slurp(dir + "/a"), "1");
  EXPECT_EQ(slurp(dir + "/sub/b"), "2");
  EXPECT_TRUE(fs::is_symlink(dir + "/a"));
  EXPECT_EQ(fs::read_symlink(dir + "/a").string(), "..data/a");
  EXPECT_EQ(modeOf(dir + "/sub/b"), 0600);
  std::string old_target = fs::read_symlink(dir + "/..data").string();
  EXPECT_TRUE(old_target.starts_with("..20"));

  // The same files again: nothing is written.
  auto same = writeAtomically(dir, {{"a", {"1", 0644}}, {"sub/b", {"2", 0600}}});
  ASSERT_TRUE(same);
  EXPECT_FALSE(*same);
  EXPECT_EQ(fs::read_symlink(dir + "/..data").string(), old_target);

  // A changed value, a key gone, a key new.
  auto next = writeAtomically(dir, {{"a", {"one", 0644}}, {"c", {"3", 0644}}});
  ASSERT_TRUE(next);
  EXPECT_TRUE(*next);
  EXPECT_EQ(slurp(dir + "/a"), "one");
  EXPECT_EQ(slurp(dir + "/c"), "3");
  EXPECT_FALSE(fs::exists(dir + "/sub"));
  EXPECT_FALSE(fs::is_symlink(dir + "/sub"));
  EXPECT_FALSE(fs::exists(dir + "/" + old_target));  // the old generation is gone
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) {
    entries++;
  }
  EXPECT_EQ(entries, 4u);  // a, c, ..data, the one timestamped dir
}

TEST(AtomicWriter, FsGroupOwnsAndCanReadEveryFile) {
  TempDir d;
  std::string dir = d.path() + "/vol";
  fs::create_directories(dir);
  ASSERT_TRUE(writeAtomically(dir, {{"key", {"v", 0600}}}, gid_t{4321}));
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/key").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 4321u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

class ObjectVolumes : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "secret and projected volumes are tmpfs mounts: needs root";
    }
    pod_ = parse(kPod);
    api_.set(ObjectRef::Kind::kConfigMap, "settings", {{"level", "debug"}, {"other", "x"}});
    api_.set(ObjectRef::Kind::kSecret, "creds", {{"password", "hunter2"}, {"user", "admin"}});
    api_.set(ObjectRef::Kind::kConfigMap, "kube-root-ca.crt", {{"ca.crt", "PEM"}});
    api_.tokens[podRefs(pod_).tokens[0]] = std::string("jwt-1");
  }
  std::string volume(const std::string& plugin, const std::string& name) const {
    return dir_.path() + "/pod/volumes/kubernetes.io~" + plugin + "/" + name;
  }
  TempDir dir_;
  Pod pod_;
  FakeObjects api_;
};

TEST_F(ObjectVolumes, FilesModesAndTmpfsAsTheKubeletLaysThemOut) {
  auto v = PodVolumes::setUp(pod_, dir_.path() + "/pod", {}, &api_);
  ASSERT_TRUE(v) << v.error().message();
  std::string cfg = volume("configmap", "cfg");
  EXPECT_EQ(*v->hostPath("cfg"), cfg);
  EXPECT_EQ(slurp(cfg + "/conf/level"), "debug");
  EXPECT_FALSE(fs::exists(cfg + "/other"));  // items: only the keys listed
  EXPECT_EQ(modeOf(cfg + "/conf/level"), 0600);
  std::string sec = volume("secret", "sec");
  EXPECT_EQ(slurp(sec + "/password"), "hunter2");
  EXPECT_EQ(modeOf(sec + "/user"), 0400);
  struct statfs fs_info {};
  ASSERT_EQ(::statfs(sec.c_str(), &fs_info), 0);
  EXPECT_EQ(fs_info.f_type, 0x01021994);  // TMPFS_MAGIC: secrets never touch a disk
  std::string api = volume("projected", "api");
  EXPECT_EQ(slurp(api + "/token"), "jwt-1");
  EXPECT_EQ(slurp(api + "/ca.crt"), "PEM");
  EXPECT_EQ(slurp(api + "/namespace"), "default");
  EXPECT_EQ(modeOf(api + "/token"), 0644);
  ASSERT_TRUE(v->tearDown());
  EXPECT_FALSE(fs::exists(dir_.path() + "/pod/volumes"));
}

TEST_F(ObjectVolumes, RefreshRewritesWhatChangedAndKeepsFilesWhenASourceVanishes) {
  auto v = PodVolumes::setUp(pod_, dir_.path() + "/pod", {}, &api_);
  ASSERT_TRUE(v) << v.error().message();
  auto unchanged = v->refresh(pod_, {}, &api_);
  ASSERT_TRUE(unchanged);
  EXPECT_FALSE(*unchanged);

  api_.set(ObjectRef::Kind::kConfigMap, "settings", {{"level", "info"}});
  api_.tokens[podRefs(pod_).tokens[0]] = std::string("jwt-2");
  auto changed = v->refresh(pod_, {}, &api_);
  ASSERT_TRUE(changed) << changed.error().message();
  EXPECT_TRUE(*changed);
  EXPECT_EQ(slurp(volume("configmap", "cfg") + "/conf/level"), "info");
  EXPECT_EQ(slurp(volume("projected", "api") + "/token"), "jwt-2");

  api_.missing(ObjectRef::Kind::kConfigMap, "settings");
  auto gone = v->refresh(pod_, {}, &api_);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().message(), "volume \"cfg\": configmap \"settings\" not found");
  EXPECT_EQ(slurp(volume("configmap", "cfg") + "/conf/level"), "info");
  ASSERT_TRUE(v->tearDown());
}

TEST_F(ObjectVolumes, AMissingKeyFailsTheMountAndLeavesNothing) {
  api_.set(ObjectRef::Kind::kConfigMap, "settings", {{"other", "x"}});
  auto v = PodVolumes::setUp(pod_, dir_.path() + "/pod", {}, &api_);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().message(),
            "volume \"cfg\": configmap references non-existent config key: level");
  EXPECT_FALSE(fs::exists(dir_.path() + "/pod/volumes"));

  api_.set(ObjectRef::Kind::kConfigMap, "settings", {{"level", "x"}});
  api_.tokens[podRefs(pod_).tokens[0]] =
      makeError("request token", "serviceaccount default/runner", "403 Forbidden");
  auto t = PodVolumes::setUp(pod_, dir_.path() + "/pod", {}, &api_);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message().find("volume \"api\": request token"), std::string::npos)
      << t.error().message();
  EXPECT_FALSE(fs::exists(dir_.path() + "/pod/volumes"));  // the tmpfs mounts are gone too
}

}  // namespace
}  // namespace kernelet::agent
