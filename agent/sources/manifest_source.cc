#include "agent/sources/manifest_source.h"

#include <dirent.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "agent/model/pod_names.h"
#include "apiclient/objects.h"
#include "images/digest.h"
#include "sys/fileio.h"

namespace kernelet::agent {

StaticPod staticPod(const ManifestPod& m, const std::string& file, const std::string& node_name) {
  StaticPod s{m.pod, file, {}, m.json};
  // The kubelet hashes the decoded pod, the host and the source into the uid;
  // the re-emitted document stands in for the decoded pod here.
  std::string digest =
      images::digestHex(images::sha256Of(m.document + "\nhost:" + node_name + "\nfile:" + file));
  s.hash = digest.substr(0, 32);
  if (s.pod.uid.empty()) {
    s.pod.uid = s.hash;
  }
  s.pod.name += "-" + node_name;
  s.pod.node_name = node_name;
  s.pod.annotations["kubernetes.io/config.source"] = "file";
  s.pod.annotations["kubernetes.io/config.hash"] = s.hash;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  s.pod.annotations["kubernetes.io/config.seen"] = apiclient::formatTime(now);
  return s;
}

Result<std::unique_ptr<ManifestSource>> ManifestSource::open(EventLoop& loop,
                                                             const std::string& dir,
                                                             const std::string& node_name,
                                                             Changed changed, Report report) {
  std::unique_ptr<ManifestSource> s(
      new ManifestSource(loop, dir, node_name, std::move(changed), std::move(report)));
  int in = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (in < 0) {
    return sysError("inotify_init1", dir);
  }
  s->inotify_.reset(in);
  // Watch before the first scan, so a file written in between is not missed.
  if (::inotify_add_watch(in, dir.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR) <
      0) {
    return sysError("watch pod manifest dir", dir);
  }
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return sysError("opendir", dir);
  }
  std::set<std::string> names;
  while (dirent* e = ::readdir(d)) {
    names.insert(e->d_name);
  }
  ::closedir(d);
  for (const auto& n : names) {
    s->load(n);
  }
  ManifestSource* self = s.get();
  TRY_VOID(loop.add(in, EPOLLIN, [self](uint32_t) { self->onEvents(); }));
  return s;
}

ManifestSource::~ManifestSource() { loop_.remove(inotify_.get()); }

bool ManifestSource::load(const std::string& name) {
  if (name.empty() || name[0] == '.') {
    return false;
  }
  std::string path = dir_ + "/" + name;
  struct stat st {};
  bool present = ::stat(path.c_str(), &st) == 0;
  if (!present || !S_ISREG(st.st_mode)) {
    first_seen_.erase(name);
    return by_file_.erase(name) > 0;
  }
  auto text = readFile(path);
  Result<std::vector<ManifestPod>> parsed =
      text ? parseManifests(*text, path) : std::unexpected(text.error());
  if (!parsed) {
    report_(parsed.error());
    return false;
  }
  std::vector<StaticPod> pods;
  for (const auto& m : *parsed) {
    if (!m.pod.ephemeral_containers.empty()) {
      // The API server's rule for static pods (#113935): ephemeral containers
      // come only through the API's subresource, which mirror pods refuse.
      report_(makeError("parse manifest", path,
                        "line " + std::to_string(m.line) +
                            ": spec.ephemeralContainers: Forbidden: static pods do not support "
                            "ephemeral containers")
                  .error());
      return false;
    }
    pods.push_back(staticPod(m, path, node_));
    // Checked on the names as they will be used (with the node suffix), before
    // any log or volume path is built from them; the kubelet refuses such a
    // pod as the API server would.
    if (auto bad = invalidPodName(pods.back().pod)) {
      report_(makeError("parse manifest", path, "line " + std::to_string(m.line) + ": " + *bad)
                  .error());
      return false;
    }
  }
  if (!first_seen_.contains(name)) {
    first_seen_[name] = next_seen_++;
  }
  reportDuplicates(name, pods);
  auto& slot = by_file_[name];
  bool same = slot.size() == pods.size();
  for (size_t i = 0; same && i < pods.size(); i++) {
    same = slot[i].hash == pods[i].hash;
  }
  slot = std::move(pods);
  return !same;
}

void ManifestSource::onEvents() {
  alignas(inotify_event) char buf[8192];
  std::set<std::string> names;
  for (;;) {
    ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    for (char* p = buf; p < buf + n;) {
      auto* e = reinterpret_cast<inotify_event*>(p);
      if (e->len > 0) {
        names.insert(e->name);
      }
      p += sizeof(inotify_event) + e->len;
    }
  }
  bool changed = false;
  for (const auto& name : names) {
    changed = load(name) || changed;
  }
  if (changed) {
    changed_();
  }
}

// The files in the order they first loaded: of two pods with one uid or one
// namespace/name, the one seen first runs, as with the kubelet.
std::vector<std::string> ManifestSource::filesInLoadOrder() const {
  std::vector<std::string> files;
  for (const auto& [file, pods] : by_file_) {
    files.push_back(file);
  }
  std::sort(files.begin(), files.end(), [this](const std::string& a, const std::string& b) {
    return first_seen_.at(a) < first_seen_.at(b);
  });
  return files;
}

void ManifestSource::reportDuplicates(const std::string& name,
                                      const std::vector<StaticPod>& pods) const {
  auto clash = [](const StaticPod& a, const StaticPod& b) -> std::string {
    if (a.pod.uid == b.pod.uid) {
      return "uid \"" + a.pod.uid + "\"";
    }
    if (a.pod.namespace_ == b.pod.namespace_ && a.pod.name == b.pod.name) {
      return "pod name \"" + a.pod.namespace_ + "/" + a.pod.name + "\"";
    }
    return "";
  };
  for (size_t i = 0; i < pods.size(); i++) {
    for (size_t j = 0; j < i; j++) {
      if (std::string what = clash(pods[i], pods[j]); !what.empty()) {
        report_(makeError("static pod", pods[i].file,
                          "duplicate " + what + " (also earlier in the same file): ignoring it")
                    .error());
      }
    }
    for (const std::string& other : filesInLoadOrder()) {
      if (other == name) {
        continue;
      }
      for (const auto& o : by_file_.at(other)) {
        if (std::string what = clash(pods[i], o); !what.empty()) {
          bool first = first_seen_.at(other) < first_seen_.at(name);
          report_(makeError("static pod", pods[i].file,
                            "duplicate " + what + " (also in `" + o.file +
                                "`): ignoring the one in `" + (first ? pods[i].file : o.file) + "`")
                      .error());
        }
      }
    }
  }
}

std::map<std::string, StaticPod> ManifestSource::pods() const {
  std::map<std::string, StaticPod> out;
  std::set<std::string> names;
  for (const std::string& file : filesInLoadOrder()) {
    for (const auto& p : by_file_.at(file)) {
      // A duplicate was reported when its file loaded; the first one stays.
      if (out.contains(p.pod.uid) || !names.insert(p.pod.namespace_ + "/" + p.pod.name).second) {
        continue;
      }
      out.emplace(p.pod.uid, p);
    }
  }
  return out;
}

}  // namespace kernelet::agent
