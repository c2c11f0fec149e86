#pragma once
// Static pods from a directory of manifests (the kubelet's staticPodPath),
// watched with inotify: a file written or moved in (re)loads its pods, a file
// removed or moved out drops them. A file that fails to parse is reported and
// its previous pods, if any, stay as they were; other files are unaffected.
// So is a pod whose names the API server would refuse. Of two pods with one
// uid or one namespace/name the first loaded runs and the other is reported.
// Hidden files (".name") are ignored, as the kubelet ignores them.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/model/pod.h"
#include "sys/event_loop.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {

struct StaticPod {
  Pod pod;
  std::string file;
  // What decides whether a running pod matches its manifest: a changed hash
  // means the pod is stopped and started again.
  std::string hash;
  std::string json;  // the manifest's document as JSON (for its mirror pod)
};

// The kubelet's defaults for a static pod: name suffixed with "-<node>", uid
// from a hash of the document, node and file when the manifest sets none,
// spec.nodeName set, config.source/hash annotations.
StaticPod staticPod(const ManifestPod& m, const std::string& file, const std::string& node_name);

class ManifestSource {
 public:
  using Changed = std::function<void()>;
  using Report = std::function<void(const Error&)>;

  // Loads every file of `dir` now, then watches it on `loop`. `changed` runs
  // (from the loop) after the set of pods changed; `report` for each bad file.
  static Result<std::unique_ptr<ManifestSource>> open(EventLoop& loop, const std::string& dir,
                                                      const std::string& node_name, Changed changed,
                                                      Report report);
  ~ManifestSource();

  // Every pod of every file that parsed, by uid.
  std::map<std::string, StaticPod> pods() const;

 private:
  ManifestSource(EventLoop& loop, std::string dir, std::string node, Changed c, Report r)
      : loop_(loop),
        dir_(std::move(dir)),
        node_(std::move(node)),
        changed_(std::move(c)),
        report_(std::move(r)) {}
  // Re-reads one file; true when its pods changed.
  bool load(const std::string& name);
  void onEvents();
  std::vector<std::string> filesInLoadOrder() const;
  // Reports each pod of `pods` (the new content of file `name`) whose uid or
  // namespace/name another pod already has, naming both files.
  void reportDuplicates(const std::string& name, const std::vector<StaticPod>& pods) const;

  EventLoop& loop_;
  std::string dir_, node_;
  Changed changed_;
  Report report_;
  UniqueFd inotify_;
  std::map<std::string, std::vector<StaticPod>> by_file_;
  std::map<std::string, uint64_t> first_seen_;  // file -> when it first loaded
  uint64_t next_seen_ = 0;
};

}  // namespace kernelet::agent
