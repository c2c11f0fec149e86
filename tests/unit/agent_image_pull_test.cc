// A container's image through the pod worker and the fake runtime: the pull
// back-off (10 s doubling, in the pod's 10 ms seconds), the kubelet's events
// and waiting reasons, and the pod's imagePullSecrets.
#include <chrono>

#include "unit/lifecycle_fixture.h"

namespace kernelet::agent {
namespace {

class FakeSecrets : public PodObjects {
 public:
  std::map<ObjectRef, ObjectData> objects;
  std::optional<ObjectData> object(const ObjectRef& ref) override {
    auto it = objects.find(ref);
    if (it == objects.end()) {
      return std::nullopt;
    }
    return it->second;
  }
  std::optional<Result<std::string>> token(const TokenRef&) override { return std::nullopt; }
  void secret(const std::string& name, const std::string& type, const std::string& key,
              const std::string& value) {
    objects[{ObjectRef::Kind::kSecret, "default", name}] = {true, {{key, value}}, type};
  }
  void missing(const std::string& name) {
    objects[{ObjectRef::Kind::kSecret, "default", name}] = {false, {}, ""};
  }
};

class ImagePull : public Lifecycle {
 protected:
  void SetUp() override {
    Lifecycle::SetUp();
    auto record = ctx_.event;
    ctx_.event = [this, record](const Pod& pod, const std::string& container,
                                const std::string& type, const std::string& reason,
                                const std::string& message) {
      if (reason == "Pulling") {
        pulls_at_.push_back(std::chrono::steady_clock::now());
      }
      record(pod, container, type, reason, message);
    };
  }
  // The gaps between the pulls, in the pod's seconds.
  std::vector<double> gaps() {
    std::vector<double> out;
    for (size_t i = 1; i < pulls_at_.size(); i++) {
      out.push_back(std::chrono::duration<double>(pulls_at_[i] - pulls_at_[i - 1]) /
                    std::chrono::duration<double>(ctx_.second));
    }
    return out;
  }
  std::vector<std::chrono::steady_clock::time_point> pulls_at_;
  FakeSecrets secrets_;
};

TEST_F(ImagePull, FailedPullsBackOff10sDoublingWithTheKubeletsEventsAndReasons) {
  const std::string image = "registry.example/app:1";
  runtime_->failPulls(image, 3, "manifest unknown");
  run("spec:\n  containers: [{name: app, image: 'registry.example/app:1'}]\n");
  ASSERT_TRUE(until([&] { return ctr("app").state.reason == "ErrImagePull"; }));
  EXPECT_EQ(ctr("app").state.message, "manifest unknown");
  ASSERT_TRUE(until([&] { return ctr("app").state.reason == "ImagePullBackOff"; }));
  EXPECT_EQ(ctr("app").state.message,
            "Back-off pulling image \"" + image + "\": ErrImagePull: manifest unknown");
  ASSERT_TRUE(until([&] { return running("app"); }, std::chrono::milliseconds(3000)));
  EXPECT_EQ(waitingReasons("app"),
            (Strings{"ContainerCreating", "ErrImagePull", "ImagePullBackOff", "ErrImagePull",
                     "ImagePullBackOff", "ErrImagePull", "ImagePullBackOff"}));
  EXPECT_EQ(runtime_->calls("pull "), Strings(4, "pull " + image));
  // 10, 20 and 40 of the pod's seconds between the pulls.
  auto g = gaps();
  ASSERT_EQ(g.size(), 3u);
  for (size_t i = 0; i < 3; i++) {
    double want = 10 << i;
    EXPECT_GE(g[i], want - 0.5) << i;
    EXPECT_LT(g[i], want + 5) << i;
  }
  std::string quoted = "\"" + image + "\"";
  for (const std::string& e :
       Strings{"Normal Pulling app: Pulling image " + quoted,
               "Warning Failed app: Failed to pull image " + quoted + ": manifest unknown",
               "Warning Failed app: Error: ErrImagePull",
               "Normal BackOff app: Back-off pulling image " + quoted,
               "Warning Failed app: Error: ImagePullBackOff"}) {
    EXPECT_TRUE(sawEvent(e)) << e;
  }
  EXPECT_TRUE(sawEvent("Normal Pulled app: Successfully pulled image " + quoted + " in 1.5s ("));
  auto pulled = std::find_if(events_.begin(), events_.end(),
                             [](const std::string& e) { return e.starts_with("Normal Pulled"); });
  ASSERT_NE(pulled, events_.end());
  EXPECT_TRUE(pulled->ends_with(" including waiting). Image size: 1234 bytes.")) << *pulled;
  EXPECT_EQ(ctr("app").restart_count, 0);
}

TEST_F(ImagePull, APresentImageIsUsedWithoutAPull) {
  runtime_->addImage("busybox");
  run("spec:\n  containers: [{name: app, image: busybox}]\n");
  ASSERT_TRUE(until([&] { return running("app"); }));
  EXPECT_TRUE(
      sawEvent("Normal Pulled app: Container image \"busybox\" already present on machine"));
  EXPECT_TRUE(runtime_->calls("pull ").empty());
}

TEST_F(ImagePull, NeverPullingAnAbsentImageSaysSoInEvents) {
  run("spec:\n  containers: [{name: app, image: busybox, imagePullPolicy: Never}]\n");
  ASSERT_TRUE(until([&] { return ctr("app").state.reason == "ErrImageNeverPull"; }));
  std::string msg = "Container image \"busybox\" is not present with pull policy of Never";
  EXPECT_TRUE(sawEvent("Warning ErrImageNeverPull app: " + msg));
  EXPECT_TRUE(sawEvent("Warning Failed app: Error: ErrImageNeverPull"));
}

TEST_F(ImagePull, ThePodsPullSecretsGiveTheCredentialsForTheImagesRegistry) {
  ctx_.objects = &secrets_;
  secrets_.secret("regcred", "kubernetes.io/dockerconfigjson", ".dockerconfigjson",
                  R"({"auths":{"https://registry.example/v1/":{"auth":"YWxpY2U6cw=="},)"
                  R"("other.example":{"username":"eve","password":"x"}}})");
  secrets_.secret("old", "kubernetes.io/dockercfg", ".dockercfg",
                  R"({"registry.example/team":{"username":"bob","password":"y"}})");
  secrets_.secret("plain", "Opaque", ".dockerconfigjson", "not even json");
  secrets_.missing("gone");
  run(R"(spec:
  imagePullSecrets: [{name: regcred}, {name: gone}, {name: ''}, {name: old}, {name: plain}]
  containers: [{name: app, image: 'registry.example/team/app:1'}]
)");
  EXPECT_EQ(worker_->pod().image_pull_secrets, (Strings{"regcred", "gone", "old", "plain"}));
  ASSERT_TRUE(until([&] { return running("app"); }));
  // The more specific key first, across the secrets; nothing of other hosts.
  EXPECT_EQ(runtime_->calls("pull "), Strings{"pull registry.example/team/app:1 with bob,alice"});
  EXPECT_TRUE(
      sawEvent("Warning FailedToRetrieveImagePullSecret : Unable to retrieve some image pull "
               "secrets (gone); attempting to pull the image may not succeed."));
}

TEST_F(ImagePull, AMalformedPullSecretFailsThePullNotTheAgent) {
  ctx_.objects = &secrets_;
  secrets_.secret("regcred", "kubernetes.io/dockerconfigjson", ".dockerconfigjson",
                  R"({"auths":{"registry.example":{"auth":"bm9jb2xvbg=="}}})");
  runtime_->addImage("busybox");
  run(R"(spec:
  imagePullSecrets: [{name: regcred}]
  containers:
  - {name: app, image: 'registry.example/app:1'}
  - {name: present, image: busybox}
)");
  ASSERT_TRUE(until([&] { return ctr("app").state.reason == "ErrImagePull"; }));
  EXPECT_EQ(ctr("app").state.message,
            "read registry credentials of `secret \"regcred\" in default .dockerconfigjson`: "
            "auths.registry.example.auth: unable to parse auth field, must be formatted as "
            "base64(username:password)");
  // An image that needs no pull needs no credentials.
  ASSERT_TRUE(until([&] { return running("present"); }));
  ASSERT_TRUE(until([&] { return ctr("app").state.reason == "ImagePullBackOff"; }));
}

TEST_F(ImagePull, AWrongShapeOfImagePullSecretsIsRefused) {
  auto pods = parseManifests(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  imagePullSecrets: regcred\n"
      "  containers: [{name: app, image: busybox}]\n",
      "web.yaml");
  ASSERT_FALSE(pods);
  EXPECT_NE(pods.error().message().find("spec.imagePullSecrets"), std::string::npos)
      << pods.error().message();
}

}  // namespace
}  // namespace kernelet::agent
