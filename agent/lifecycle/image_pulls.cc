// A container's image: the pod's pull secrets and what a pull's outcome does,
// as the kubelet's image manager (pkg/kubelet/images/image_manager.go) and
// getPullSecretsForPod: events Pulling, Pulled, Failed, BackOff, and the
// ErrImagePull / ImagePullBackOff waiting reasons with the pull back-off.

#include <cstdio>

#include "agent/lifecycle/pod_worker.h"
#include "agent/log/log.h"
#include "images/keyring.h"
#include "images/reference.h"

namespace kernelet::agent {

namespace {

// Where a container goes when nothing of it runs or is due (as containers.cc).
CtrState idle(bool started_once) { return started_once ? CtrState::kExited : CtrState::kWaiting; }

// A duration as Go prints time.Duration.Truncate(time.Millisecond):
// "0s", "813ms", "1.5s", "2m3.04s", "1h0m0s".
std::string goDuration(std::chrono::nanoseconds d) {
  int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms <= 0) {
    return "0s";
  }
  if (ms < 1000) {
    return std::to_string(ms) + "ms";
  }
  int64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
  std::string out;
  if (h > 0) {
    out += std::to_string(h) + "h";
  }
  if (h > 0 || m > 0) {
    out += std::to_string(m) + "m";
  }
  out += std::to_string(s);
  if (frac > 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%03d", static_cast<int>(frac));
    std::string f = buf;
    while (f.back() == '0') {
      f.pop_back();
    }
    out += f;
  }
  return out + "s";
}

}  // namespace

Result<std::vector<images::RegistryCredentials>> PodWorker::pullCredentials(
    const std::string& image) {
  if (pod_.image_pull_secrets.empty()) {
    return std::vector<images::RegistryCredentials>{};
  }
  // One keyring of all the pod's secrets, as MakeDockerKeyring builds it: its
  // keys are ordered across the secrets, not secret by secret.
  images::DockerKeyring keyring;
  std::string failed;
  PodObjects* objects = this->objects();
  for (const auto& name : pod_.image_pull_secrets) {
    std::optional<ObjectData> secret;
    if (objects != nullptr) {
      secret = objects->object({ObjectRef::Kind::kSecret, pod_.namespace_, name});
    }
    if (!secret || !secret->found) {
      log::info("Unable to retrieve pull secret, the image pull may not succeed.",
                {{"pod", who()}, {"secret", pod_.namespace_ + "/" + name}});
      failed += (failed.empty() ? "" : ", ") + name;
      continue;
    }
    TRY(images::DockerAuths auths,
        images::secretAuths(secret->type, secret->data,
                            "secret \"" + name + "\" in " + pod_.namespace_));
    keyring.add(auths);
  }
  if (!failed.empty()) {
    emit(nullptr, "Warning", "FailedToRetrieveImagePullSecret",
         "Unable to retrieve some image pull secrets (" + failed +
             "); attempting to pull the image may not succeed.");
  }
  auto ref = images::parseReference(image);
  if (!ref) {
    return std::vector<images::RegistryCredentials>{};  // ensureImage says InvalidImageName
  }
  return keyring.lookup(ref->domain + "/" + ref->repository);
}

void PodWorker::onImage(size_t index, const runtime::ImageOutcome& o, bool async) {
  Ctr& c = ctrs_[index];
  if (async && stopping()) {
    transition(c, idle(c.started_once), "pod stopping");
    maybeCleanUp();
    return;
  }
  const std::string& image = c.spec->image;
  if (!o.ok) {
    setWaiting(c, o.reason, o.message);
    log::error("Failed to get image", {{"pod", who()},
                                       {"container", c.spec->name},
                                       {"image", image},
                                       {"reason", o.reason},
                                       {"err", o.message}});
    if (o.reason == "ErrImagePull") {
      emit(&c, "Warning", "Failed", "Failed to pull image \"" + image + "\": " + o.message);
      emit(&c, "Warning", "Failed", "Error: ErrImagePull");
      // Keyed by image: the worker is the pod's, so this is the kubelet's pod UID + image.
      armRetry(c, backoff_.pullFailed("pull/" + image, Clock::now(), ctx_.second), false);
    } else {
      if (o.reason == "ErrImageNeverPull") {
        emit(&c, "Warning", "ErrImageNeverPull", o.message);
      }
      emit(&c, "Warning", "Failed", "Error: " + o.reason);
      retryLater(c);
    }
    if (async) {
      publish();
    } else {
      resync_ = true;
    }
    return;
  }
  c.image = o.image;
  if (o.pulled) {
    // The whole time counts from the Pulling event: a wait for a free puller too.
    auto total = std::max<std::chrono::nanoseconds>(Clock::now() - c.pull_started, o.pull_time);
    log::info("Successfully pulled image", {{"image", image}});
    emit(&c, "Normal", "Pulled",
         "Successfully pulled image \"" + image + "\" in " + goDuration(o.pull_time) + " (" +
             goDuration(total) + " including waiting). Image size: " + std::to_string(o.size) +
             " bytes.");
  } else {
    // The kubelet's wording without its image credential verification
    // (KEP-2535), which kernelet does not do: an image on the node serves
    // every pod, whoever pulled it with which secret, as with the kubelet's
    // default before 1.35. 1.35 says "... and can be accessed by the pod"
    // only after that check.
    emit(&c, "Normal", "Pulled", "Container image \"" + image + "\" already present on machine");
  }
  runContainer(c);
  if (async) {
    sync();
  }
}

}  // namespace kernelet::agent
