#include "agent/volumes.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

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

// Writes the files into DIR/..<timestamp>, then points DIR/..data at it with a
// rename and links each top-level name through ..data, so a reader never sees
// half an update (the kubelet's AtomicWriter).
Result<void> writeDownwardApi(const Pod& pod, const Volume& v, const std::string& dir,
                              const PodRuntimeInfo& info) {
  std::string stamp = "..kernelet_data";
  std::string data = dir + "/" + stamp;
  TRY_VOID(mkdirs(data, 0755));
  for (const auto& item : v.items) {
    std::string value;
    if (!item.field_path.empty()) {
      TRY(value, fieldRefValue(pod, item.field_path, info, true));
    } else {
      std::string container = item.resource_container;
      TRY(value, resourceFieldValue(pod, container, item.resource, info));
    }
    fs::path file = fs::path(data) / item.path;
    TRY_VOID(mkdirs(file.parent_path().string(), 0755));
    TRY_VOID(writeFileAtomic(file.string(), value, 0644));
    std::string top = item.path.substr(0, item.path.find('/'));
    std::string link = dir + "/" + top;
    if (::access(link.c_str(), F_OK) != 0 &&
        ::symlink(("..data/" + top).c_str(), link.c_str()) != 0) {
      return sysError("symlink", link);
    }
  }
  std::string tmp = dir + "/..data_tmp";
  ::unlink(tmp.c_str());
  if (::symlink(stamp.c_str(), tmp.c_str()) != 0) {
    return sysError("symlink", tmp);
  }
  if (::rename(tmp.c_str(), (dir + "/..data").c_str()) != 0) {
    return sysError("rename", dir + "/..data");
  }
  return {};
}

}  // namespace

Result<PodVolumes> PodVolumes::setUp(const Pod& pod, const std::string& pod_dir,
                                     const PodRuntimeInfo& info) {
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
      case Volume::Kind::kDownwardApi: {
        std::string path = pv.dir_ + "/kubernetes.io~downward-api/" + v.name;
        TRY_VOID(mkdirs(path, 0755));
        TRY_VOID(writeDownwardApi(pod, v, path, info));
        pv.paths_[v.name] = path;
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

std::optional<std::string> PodVolumes::hostPath(const std::string& volume) const {
  auto it = paths_.find(volume);
  if (it == paths_.end()) {
    return std::nullopt;
  }
  return it->second;
}

}  // namespace kernelet::agent
