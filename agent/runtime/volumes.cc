#include "agent/runtime/volumes.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "agent/runtime/atomic_writer.h"
#include "apiclient/quantity.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

namespace fs = std::filesystem;

Result<void> mkdirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) {
    return makeError("mkdir", path, ec.message());
  }
  if (::chmod(path.c_str(), mode) != 0) {
    return sysError("chmod", path);
  }
  return {};
}

// The hostPath types (k8s.io/api core/v1 HostPathType) and what each demands.
Result<void> checkHostPath(const Volume& v) {
  const std::string& t = v.host_path_type;
  struct stat st {};
  bool exists = ::stat(v.path.c_str(), &st) == 0;
  auto fail = [&](const std::string& why) {
    return makeError("hostPath", v.path, "type " + t + ": " + why);
  };
  if (t.empty()) {
    return {};
  }
  if (t == "DirectoryOrCreate") {
    if (!exists) {
      return mkdirs(v.path, 0755);
    }
    return S_ISDIR(st.st_mode) ? Result<void>() : fail("exists and is not a directory");
  }
  if (t == "FileOrCreate") {
    if (!exists) {
      int fd = ::open(v.path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) {
        return sysError("create hostPath file", v.path);
      }
      ::close(fd);
      return {};
    }
    return S_ISREG(st.st_mode) ? Result<void>() : fail("exists and is not a file");
  }
  if (!exists) {
    return fail("does not exist");
  }
  if ((t == "Directory" && !S_ISDIR(st.st_mode)) || (t == "File" && !S_ISREG(st.st_mode)) ||
      (t == "Socket" && !S_ISSOCK(st.st_mode)) || (t == "CharDevice" && !S_ISCHR(st.st_mode)) ||
      (t == "BlockDevice" && !S_ISBLK(st.st_mode))) {
    return fail("is not a " + t);
  }
  if (t != "Directory" && t != "File" && t != "Socket" && t != "CharDevice" && t != "BlockDevice") {
    return makeError("hostPath", v.path, "unknown type \"" + t + "\"");
  }
  return {};
}

std::optional<gid_t> groupOf(const Pod& pod) {
  if (!pod.fs_group) {
    return std::nullopt;
  }
  return static_cast<gid_t>(*pod.fs_group);
}

// The files of a projected-kind volume, from its sources in order.
Result<std::map<std::string, VolumeFile>> volumeFiles(const Pod& pod, const Volume& v,
                                                      const PodRuntimeInfo& info,
                                                      PodObjects* objects) {
  std::map<std::string, VolumeFile> files;
  for (const auto& s : v.sources) {
    switch (s.kind) {
      case Projection::Kind::kDownwardApi:
        for (const auto& item : s.fields) {
          std::string value;
          if (!item.field_path.empty()) {
            TRY(value, fieldRefValue(pod, item.field_path, info, true));
          } else {
            TRY(value, resourceFieldValue(pod, item.resource_container, item.resource, info));
          }
          files[item.path] = {value, item.mode.value_or(v.default_mode)};
        }
        break;
      case Projection::Kind::kConfigMap:
      case Projection::Kind::kSecret: {
        bool is_cm = s.kind == Projection::Kind::kConfigMap;
        ObjectRef ref{is_cm ? ObjectRef::Kind::kConfigMap : ObjectRef::Kind::kSecret,
                      pod.namespace_, s.name};
        TRY(auto data, objectData(objects, ref, s.optional));
        if (s.items.empty()) {
          for (const auto& [key, value] : data) {
            files[key] = {value, v.default_mode};
          }
        }
        for (const auto& item : s.items) {
          auto it = data.find(item.key);
          if (it == data.end()) {
            if (s.optional) {
              continue;
            }
            // The kubelet's words.
            const char* what = is_cm ? "configmap references non-existent config key"
                                     : "references non-existent secret key";
            return std::unexpected(Error{.op = std::string(what) + ": " + item.key});
          }
          files[item.path] = {it->second, item.mode.value_or(v.default_mode)};
        }
        break;
      }
      case Projection::Kind::kServiceAccountToken: {
        if (objects == nullptr) {
          return makeError("request token", s.token_path,
                           "service-account tokens come from an API server: run with "
                           "--kubeconfig (static pods cannot use them)");
        }
        std::string sa = pod.service_account_name.empty() ? "default" : pod.service_account_name;
        auto token = objects->token(
            {pod.namespace_, sa, s.audience, s.expiration_seconds, pod.name, pod.uid});
        if (!token) {
          return makeError("request token", "serviceaccount " + pod.namespace_ + "/" + sa,
                           "not yet issued");
        }
        TRY(std::string t, *token);
        files[s.token_path] = {t, v.default_mode};
        break;
      }
    }
  }
  return files;
}

const char* pluginDir(Volume::Kind kind) {
  switch (kind) {
    case Volume::Kind::kConfigMap:
      return "kubernetes.io~configmap";
    case Volume::Kind::kSecret:
      return "kubernetes.io~secret";
    case Volume::Kind::kProjected:
      return "kubernetes.io~projected";
    default:
      return "kubernetes.io~downward-api";
  }
}

}  // namespace

Result<PodVolumes> PodVolumes::setUp(const Pod& pod, const std::string& pod_dir,
                                     const PodRuntimeInfo& info, PodObjects* objects) {
  PodVolumes pv;
  pv.dir_ = pod_dir + "/volumes";
  auto one = [&](const Volume& v) -> Result<void> {
    switch (v.kind) {
      case Volume::Kind::kEmptyDir: {
        std::string path = pv.dir_ + "/kubernetes.io~empty-dir/" + v.name;
        // 0777, as the kubelet makes emptyDir: any container user may write.
        TRY_VOID(mkdirs(path, 0777));
        if (v.medium == "Memory") {
          std::string options = "mode=1777";
          if (!v.size_limit.empty()) {
            TRY(auto q, apiclient::Quantity::parse(v.size_limit));
            options += ",size=" + std::to_string(q.value());
          }
          if (::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
            return sysError("mount tmpfs", path);
          }
          pv.tmpfs_.push_back(path);
        } else if (!v.medium.empty()) {
          return makeError("emptyDir", v.name, "unknown medium \"" + v.medium + "\"");
        }
        if (pod.fs_group) {
          // The group owns the volume and new files inherit it (setgid), as with fsGroup.
          if (::chown(path.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(*pod.fs_group)) !=
                  0 ||
              ::chmod(path.c_str(), 02777) != 0) {
            return sysError("apply fsGroup", path);
          }
        }
        pv.paths_[v.name] = path;
        return {};
      }
      case Volume::Kind::kHostPath:
        TRY_VOID(checkHostPath(v));
        pv.paths_[v.name] = v.path;
        return {};
      case Volume::Kind::kDownwardApi:
      case Volume::Kind::kConfigMap:
      case Volume::Kind::kSecret:
      case Volume::Kind::kProjected: {
        std::string path = pv.dir_ + "/" + pluginDir(v.kind) + "/" + v.name;
        TRY_VOID(mkdirs(path, 0755));
        if (v.kind != Volume::Kind::kConfigMap) {
          // Secrets and tokens stay in memory, as the kubelet's wrapped emptyDir{Memory}.
          if (::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
            return sysError("mount tmpfs", path);
          }
          pv.tmpfs_.push_back(path);
        }
        pv.paths_[v.name] = path;
        TRY(auto files, volumeFiles(pod, v, info, objects));
        TRY_VOID(writeAtomically(path, files, groupOf(pod)));
        pv.projected_.push_back(v.name);
        return {};
      }
      case Volume::Kind::kOther:
        return makeError("set up volume", v.name,
                         (v.source.empty() ? std::string("this volume type") : v.source) +
                             " volumes need an API server (run with --kubeconfig)");
    }
    return {};
  };
  for (const auto& v : pod.volumes) {
    if (auto r = one(v); !r) {
      Error e = withContext(r.error(), "volume \"" + v.name + "\"");
      if (auto c = pv.tearDown(); !c) {
        e.cleanup.push_back(c.error().message());
      }
      return std::unexpected(e);
    }
  }
  return pv;
}

Result<bool> PodVolumes::refresh(const Pod& pod, const PodRuntimeInfo& info, PodObjects* objects) {
  bool changed = false;
  for (const auto& name : projected_) {
    auto v = std::find_if(pod.volumes.begin(), pod.volumes.end(),
                          [&](const Volume& x) { return x.name == name; });
    if (v == pod.volumes.end()) {
      continue;
    }
    auto files = volumeFiles(pod, *v, info, objects);
    if (!files) {
      return std::unexpected(withContext(files.error(), "volume \"" + name + "\""));
    }
    TRY(bool wrote,
        addContext(writeAtomically(paths_[name], *files, groupOf(pod)), "volume \"" + name + "\""));
    changed = changed || wrote;
  }
  return changed;
}

Result<void> PodVolumes::tearDown() {
  for (const auto& path : tmpfs_) {
    if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      return sysError("umount", path);
    }
  }
  tmpfs_.clear();
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (ec) {
    return makeError("remove volumes", dir_, ec.message());
  }
  return {};
}

PodVolumes PodVolumes::adopt(Layout layout) {
  PodVolumes pv;
  pv.dir_ = std::move(layout.dir);
  pv.paths_ = std::move(layout.paths);
  pv.tmpfs_ = std::move(layout.tmpfs);
  pv.projected_ = std::move(layout.projected);
  return pv;
}

std::optional<std::string> PodVolumes::hostPath(const std::string& volume) const {
  auto it = paths_.find(volume);
  if (it == paths_.end()) {
    return std::nullopt;
  }
  return it->second;
}

}  // namespace kernelet::agent
