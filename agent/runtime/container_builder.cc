#include "agent/runtime/container_builder.h"

#include <fcntl.h>
#include <sys/capability.h>
#include <sys/mount.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "agent/log/log.h"
#include "agent/model/service_env.h"
#include "agent/runtime/mount_propagation.h"
#include "agent/runtime/subpath.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

using isolation::Mount;
using isolation::Namespace;

std::string capName(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  return name.starts_with("CAP_") ? name : "CAP_" + name;
}

std::vector<std::string> allCapabilities() {
  std::vector<std::string> out;
  for (int i = 0; i < static_cast<int>(cap_max_bits()); i++) {
    char* n = cap_to_name(i);
    out.push_back(capName(n));
    cap_free(n);
  }
  return out;
}

// The container's securityContext over the pod's, field by field.
SecurityContext effective(const SecurityContext& pod, const SecurityContext& c) {
  SecurityContext s = c;
  s.run_as_user = c.run_as_user ? c.run_as_user : pod.run_as_user;
  s.run_as_group = c.run_as_group ? c.run_as_group : pod.run_as_group;
  s.run_as_non_root = c.run_as_non_root ? c.run_as_non_root : pod.run_as_non_root;
  if (s.seccomp_type.empty()) {
    s.seccomp_type = pod.seccomp_type;
    s.seccomp_localhost_profile = pod.seccomp_localhost_profile;
  }
  return s;
}

Result<std::vector<std::string>> capabilities(const SecurityContext& sc, bool privileged) {
  if (privileged) {
    return allCapabilities();
  }
  std::vector<std::string> caps = isolation::defaultCapabilities();
  for (const auto& d : sc.capabilities_drop) {
    if (capName(d) == "CAP_ALL") {
      caps.clear();
    }
    std::erase(caps, capName(d));
  }
  for (const auto& a : sc.capabilities_add) {
    if (capName(a) == "CAP_ALL") {
      return allCapabilities();
    }
    if (cap_value_t v; cap_from_name(capName(a).c_str(), &v) != 0) {
      return makeError("capabilities.add", a, "unknown capability");
    }
    if (std::find(caps.begin(), caps.end(), capName(a)) == caps.end()) {
      caps.push_back(capName(a));
    }
  }
  return caps;
}

// The kubelet's service variables for this container (none without an API
// server). A static pod does not wait for the Services' first list, as in
// the kubelet: it may be what brings the API server up.
Result<EnvList> serviceVars(const ContainerInput& in) {
  if (in.services == nullptr) {
    return EnvList{};
  }
  auto services = in.services->services();
  if (!services) {
    if (!isStaticPod(*in.pod)) {
      return std::unexpected(Error{.op = kServicesNotSynced});
    }
    services.emplace();
  }
  return serviceEnv(*services, in.pod->namespace_, in.pod->enable_service_links);
}

struct Environment {
  std::vector<std::string> env;                  // KEY=value, what the process gets
  std::map<std::string, std::string> container;  // the kubelet's own: services, envFrom, env
};

Result<Environment> environment(const ContainerInput& in, const std::string& hostname) {
  // The image's env, then HOSTNAME, then the service variables, then the
  // container's, each replacing a variable of the same name: the container's
  // own win over the services' as in the kubelet; $(VAR) refers to the ones
  // defined before it, services included.
  std::vector<std::pair<std::string, std::string>> env;
  std::map<std::string, std::string> vars;
  Environment out;
  auto set = [&](const std::string& k, const std::string& v) {
    auto it = std::find_if(env.begin(), env.end(), [&](const auto& e) { return e.first == k; });
    if (it != env.end()) {
      it->second = v;
    } else {
      env.emplace_back(k, v);
    }
    vars[k] = v;
  };
  for (const auto& kv : in.image.env) {
    size_t eq = kv.find('=');
    set(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
  }
  set("HOSTNAME", hostname);
  // From here on what the kubelet makes (makeEnvironmentVariables: the
  // service variables, envFrom, env): what it expands a subPathExpr with,
  // without the image's.
  auto set_own = [&](const std::string& k, const std::string& v) {
    set(k, v);
    out.container[k] = v;
  };
  TRY(EnvList services, serviceVars(in));
  for (const auto& [k, v] : services) {
    set_own(k, v);
  }
  const Container& c = *in.container;
  const std::string& ns = in.pod->namespace_;
  // envFrom first, then env: an explicit variable wins over an imported one.
  for (const auto& f : c.env_from) {
    bool is_cm = !f.config_map.empty();
    ObjectRef ref{is_cm ? ObjectRef::Kind::kConfigMap : ObjectRef::Kind::kSecret, ns,
                  is_cm ? f.config_map : f.secret};
    TRY(auto data, objectData(in.objects, ref, f.optional));
    for (const auto& [key, value] : data) {
      // Keys that cannot be variable names are skipped, as the kubelet skips them.
      std::string name = f.prefix + key;
      if (!name.empty() && name.find('=') == std::string::npos &&
          std::all_of(name.begin(), name.end(), [](char ch) { return ch > ' ' && ch < 127; })) {
        set_own(name, value);
      }
    }
  }
  for (const auto& e : c.env) {
    std::string value;
    if (e.config_map_key || e.secret_key) {
      const KeySelector& k = e.config_map_key ? *e.config_map_key : *e.secret_key;
      ObjectRef ref{e.config_map_key ? ObjectRef::Kind::kConfigMap : ObjectRef::Kind::kSecret, ns,
                    k.name};
      TRY(auto data, objectData(in.objects, ref, k.optional));
      auto it = data.find(k.key);
      if (it == data.end()) {
        if (k.optional) {
          continue;
        }
        // The kubelet's words.
        return std::unexpected(Error{.op = "couldn't find key " + k.key + " in " +
                                           (e.config_map_key ? "ConfigMap " : "Secret ") + ns +
                                           "/" + k.name});
      }
      value = it->second;
    } else if (!e.field_path.empty()) {
      TRY(value, addContext(fieldRefValue(*in.pod, e.field_path, in.info), "env " + e.name));
    } else if (!e.resource.empty()) {
      std::string container = e.resource_container.empty() ? c.name : e.resource_container;
      TRY(value,
          addContext(resourceFieldValue(*in.pod, container, e.resource, in.info), "env " + e.name));
    } else {
      value = expandVars(e.value, vars);
    }
    set_own(e.name, value);
  }
  for (const auto& [k, v] : env) {
    out.env.push_back(k + "=" + v);
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> containerEnvironment(const ContainerInput& in,
                                                      const std::string& hostname) {
  TRY(Environment env, environment(in, hostname));
  return std::move(env.env);
}

namespace {

Result<isolation::SeccompProfile> seccomp(const ContainerInput& in, const SecurityContext& sc,
                                          bool privileged) {
  using Kind = isolation::SeccompProfile::Kind;
  std::string type = sc.seccomp_type;
  if (type.empty()) {
    type = in.seccomp_default ? "RuntimeDefault" : "Unconfined";
  }
  if (privileged || type == "Unconfined") {
    return isolation::SeccompProfile{.kind = Kind::kUnconfined};
  }
  if (type == "RuntimeDefault") {
    return isolation::SeccompProfile{.kind = Kind::kRuntimeDefault};
  }
  std::string path = in.seccomp_dir + "/" + sc.seccomp_localhost_profile;
  if (sc.seccomp_localhost_profile.empty() ||
      sc.seccomp_localhost_profile.find("..") != std::string::npos) {
    return makeError("seccompProfile.localhostProfile", sc.seccomp_localhost_profile,
                     "must name a file under " + in.seccomp_dir);
  }
  TRY(std::string json, readFile(path));
  return isolation::SeccompProfile{.kind = Kind::kJson, .json = json, .origin = path};
}

// mountPropagation as the OCI mount option containerd gives it.
std::string propagationOption(const std::string& mode) {
  return mode == "HostToContainer" ? "rslave" : mode == "Bidirectional" ? "rshared" : "rprivate";
}

// configMap, secret, downwardAPI and projected volumes are mounted read-only
// whatever the volumeMount's readOnly says, as the kubelet does since 1.10:
// the agent rewrites them, so a container's writes would be undone, and a
// container that could write there could plant links for the writer.
bool apiDataVolume(const Pod& pod, const std::string& name) {
  auto v = std::find_if(pod.volumes.begin(), pod.volumes.end(),
                        [&](const Volume& x) { return x.name == name; });
  if (v == pod.volumes.end()) {
    return false;
  }
  switch (v->kind) {
    case Volume::Kind::kConfigMap:
    case Volume::Kind::kSecret:
    case Volume::Kind::kDownwardApi:
    case Volume::Kind::kProjected:
      return true;
    default:
      return false;
  }
}

// A subPath's detached mount. The user sees the kubelet's words, which name
// the mount and the container but not the cause: that would tell a pod about
// the host's filesystem. The cause goes to the agent's log, as the kubelet's.
Result<UniqueFd> subPathMount(const std::string& volume_dir, const std::string& sub_path,
                              const std::string& mount, const std::string& container) {
  auto failed = [&](const char* what, const Error& e) {
    log::error(std::string(what) + " for volumeMount of the container",
               {{"containerName", container}, {"volumeMountName", mount}, {"err", e.message()}});
    std::string words =
        std::string(what) + " for volumeMount \"" + mount + "\" of container \"" + container + "\"";
    words[0] = 'f';  // the log's "Failed", the message's "failed"
    return std::unexpected(Error{.op = words});
  };
  UniqueFd dir(::open(volume_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    return failed("Failed to prepare subPath", sysError("open", volume_dir).error());
  }
  if (auto made = makeSubPathDirs(dir.get(), sub_path); !made) {
    return failed("Failed to create subPath directory", made.error());
  }
  auto fd = openSubPath(dir.get(), sub_path);
  if (!fd) {
    return failed("Failed to prepare subPath", fd.error());
  }
  auto tree = detachedMount(fd->get(), true);
  if (!tree) {
    return failed("Failed to prepare subPath", tree.error());
  }
  return std::move(*tree);
}

}  // namespace

Result<isolation::ContainerSpec> buildContainerSpec(const ContainerInput& in) {
  const Pod& pod = *in.pod;
  const Container& c = *in.container;
  const PodSandbox& sb = *in.sandbox;
  isolation::ContainerSpec s;
  SecurityContext sc = effective(pod.security_context, c.security_context);
  bool privileged = sc.privileged.value_or(false);

  TRY(Environment env, environment(in, sb.hostname()));
  s.env = std::move(env.env);
  std::map<std::string, std::string> vars;
  for (const auto& kv : s.env) {
    vars[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
  }
  std::vector<std::string> command, args;
  for (const auto& a : c.command) {
    command.push_back(expandVars(a, vars));
  }
  for (const auto& a : c.args) {
    args.push_back(expandVars(a, vars));
  }
  TRY(s.argv, images::containerArgv(in.image, command, args, c.name));
  s.cwd = !c.working_dir.empty()          ? c.working_dir
          : !in.image.working_dir.empty() ? in.image.working_dir
                                          : "/";

  // User: runAsUser/runAsGroup win over the image's USER.
  TRY(images::ResolvedUser user, images::resolveUser(in.rootfs, in.image.user));
  s.uid = sc.run_as_user ? static_cast<uid_t>(*sc.run_as_user) : user.uid;
  s.gid = sc.run_as_group ? static_cast<gid_t>(*sc.run_as_group) : user.gid;
  s.additional_gids = sc.run_as_user ? std::vector<gid_t>{} : user.additional_gids;
  if (pod.fs_group) {
    s.additional_gids.push_back(static_cast<gid_t>(*pod.fs_group));
  }
  for (int64_t g : pod.supplemental_groups) {
    s.additional_gids.push_back(static_cast<gid_t>(g));
  }
  // The primary group is a supplementary one too, first, as containerd's
  // ensureAdditionalGids makes it (and containerStatuses[].user shows it).
  if (std::find(s.additional_gids.begin(), s.additional_gids.end(), s.gid) ==
      s.additional_gids.end()) {
    s.additional_gids.insert(s.additional_gids.begin(), s.gid);
  }
  if (sc.run_as_non_root.value_or(false)) {
    std::string image_user = in.image.user.substr(0, in.image.user.find(':'));
    if (!sc.run_as_user && !image_user.empty() &&
        !std::all_of(image_user.begin(), image_user.end(),
                     [](unsigned char ch) { return std::isdigit(ch); })) {
      return makeError("verify runAsNonRoot", c.name,
                       "container has runAsNonRoot and image has non-numeric user (" +
                           in.image.user + "), cannot verify user is non-root");
    }
    if (s.uid == 0) {
      return makeError("verify runAsNonRoot", c.name,
                       "container has runAsNonRoot and image will run as root (pod: \"" + pod.name +
                           "_" + pod.namespace_ + "(" + pod.uid + ")\", container: " + c.name +
                           ")");
    }
  }

  // The hostname was set on the pod's UTS namespace by the sandbox; joined here.
  s.rootfs = in.rootfs;
  s.readonly_rootfs = sc.read_only_root_filesystem.value_or(false);
  s.namespaces = {{Namespace::kMount, ""},
                  {Namespace::kCgroup, ""},
                  {Namespace::kIpc, sb.ipcPath()},
                  {Namespace::kUts, sb.utsPath()},
                  {Namespace::kPid, in.pid_ns}};
  if (!pod.host_network) {
    s.namespaces.push_back({Namespace::kNet, sb.netnsPath()});
  } else {
    std::erase_if(s.namespaces, [](const auto& n) { return n.type == Namespace::kUts; });
  }
  // hostPID / hostIPC: the node's namespaces are the agent's, so the
  // container simply keeps them (CRI's NamespaceMode NODE). hostPID wins over
  // shareProcessNamespace's and an ephemeral target's pid ns, as in the
  // kubelet's pidNamespaceForPod. Without a pid ns of its own the container's
  // main process is not an init: its leftovers die with its cgroup (release),
  // as containerd's shim kills all on exit for such containers.
  if (pod.host_pid) {
    std::erase_if(s.namespaces, [](const auto& n) { return n.type == Namespace::kPid; });
  }
  if (pod.host_ipc) {
    std::erase_if(s.namespaces, [](const auto& n) { return n.type == Namespace::kIpc; });
  }
  s.mounts = isolation::defaultMounts();
  if (privileged) {
    for (auto& m : s.mounts) {
      if (m.destination == "/sys" || m.destination == "/sys/fs/cgroup") {
        std::erase(m.options, "ro");
      }
    }
  } else {
    s.masked_paths = isolation::defaultMaskedPaths();
    s.readonly_paths = isolation::defaultReadonlyPaths();
  }
  if (pod.host_ipc) {
    // POSIX shared memory is files in /dev/shm: the node's, as containerd
    // binds it for a hostIPC pod (its SysV segments come with the IPC ns).
    for (auto& m : s.mounts) {
      if (m.destination == "/dev/shm") {
        m = {"/dev/shm", "bind", "/dev/shm", {"rbind", "rprivate", "rw"}};
      }
    }
  }
  for (auto [dest, file] : {std::pair{"/etc/hosts", sb.hostsFile()},
                            {"/etc/resolv.conf", sb.resolvConf()},
                            {"/etc/hostname", sb.hostnameFile()}}) {
    s.mounts.push_back({dest, "bind", file, {"rbind", "rprivate", "rw"}});
  }
  for (const auto& m : c.volume_mounts) {
    auto host = in.volumes->hostPath(m.name);
    if (!host) {
      return makeError("mount volume", m.name, "no such volume in the pod");
    }
    bool read_only = m.read_only || apiDataVolume(pod, m.name);
    // containerd's translation of the CRI mount: propagation as rprivate,
    // rslave or rshared on a source that can propagate; rro when asked.
    TRY_VOID(checkPropagationSource(*host, m.mount_propagation));
    std::vector<std::string> options = {"rbind", propagationOption(m.mount_propagation),
                                        !read_only ? "rw" : (m.recursiveReadOnly() ? "rro" : "ro")};
    if (m.mount_propagation == "Bidirectional") {
      s.rootfs_propagation = MS_SHARED | MS_REC;
    } else if (m.mount_propagation == "HostToContainer" && s.rootfs_propagation == 0) {
      s.rootfs_propagation = MS_SLAVE | MS_REC;
    }
    TRY(std::string sub_path, mountSubPath(m, env.container));
    if (sub_path.empty()) {
      s.mounts.push_back({m.mount_path, "bind", *host, options});
      continue;
    }
    // The source path only names the mount in messages: what is bound is
    // the detached mount of the inode resolved here, and without it (a spec
    // for execs, which mount nothing) planMount refuses the mount.
    isolation::Mount mount{m.mount_path, "bind", *host + "/" + sub_path, options};
    mount.source_fd_only = true;
    if (in.subpath_mounts != nullptr) {
      TRY(UniqueFd tree, subPathMount(*host, sub_path, m.name, c.name));
      mount.source_fd = tree.get();
      in.subpath_mounts->push_back(std::move(tree));
    }
    s.mounts.push_back(std::move(mount));
  }
  if (!in.termination_file.empty() && !c.termination_message_path.empty()) {
    // After the volumes, as the kubelet's makeMounts appends it.
    s.mounts.push_back(
        {c.termination_message_path, "bind", in.termination_file, {"rbind", "rprivate", "rw"}});
  }

  TRY(std::vector<std::string> caps, capabilities(sc, privileged));
  s.capabilities.bounding = caps;
  s.capabilities.effective = caps;
  s.capabilities.permitted = caps;
  s.no_new_privileges = !privileged && !sc.allow_privilege_escalation.value_or(true);
  TRY(s.seccomp, seccomp(in, sc, privileged));
  s.oom_score_adj = oomScoreAdj(in.qos, c.resources, in.node_memory);
  return s;
}

}  // namespace kernelet::agent
