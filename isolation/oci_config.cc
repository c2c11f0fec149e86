#include "isolation/oci_config.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <set>
#include <type_traits>

#include "isolation/sysctl.h"
#include "sys/fileio.h"
#include "sys/json.h"

namespace kernelet::isolation {

namespace {

using json::Cursor;

// Errors name the file and the field, e.g.
//   config.json `/b/config.json`: linux.resources.blockIO: not supported by kernelet
constexpr const char* kOp = "config.json";

// Every member of `obj` must be one kernelet implements.
Result<void> known(const Cursor& obj, const std::set<std::string>& supported) {
  TRY_VOID(obj.expectObject());
  return obj.onlyKeys(supported, "not supported by kernelet");
}

// A field that may be present only if empty (null, "", [] or {}).
Result<void> mustBeEmpty(const Cursor& obj, const char* key) {
  TRY(std::optional<Cursor> c, obj.opt(key));
  if (!c) {
    return {};
  }
  const rapidjson::Value& v = c->value();
  bool empty = (v.IsString() && v.GetStringLength() == 0) || (v.IsArray() && v.Empty()) ||
               (v.IsObject() && v.MemberCount() == 0);
  if (!empty) {
    return c->error("not supported by kernelet");
  }
  return {};
}

Result<void> readProcess(const Cursor& p, ContainerSpec& s) {
  TRY_VOID(
      known(p, {"terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities", "rlimits",
                "noNewPrivileges", "oomScoreAdj", "apparmorProfile", "selinuxLabel"}));
  // The terminal's master goes to --console-socket (oci::create checks that
  // one was given, as runc and crun do).
  TRY(s.terminal, p.optBool("terminal"));
  TRY(std::optional<Cursor> size, p.opt("consoleSize"));
  if (size) {
    TRY_VOID(known(*size, {"height", "width"}));
    TRY(auto height, size->optNumber<uint16_t>("height"));
    TRY(auto width, size->optNumber<uint16_t>("width"));
    // runc and crun apply it only to a terminal; without one there is no
    // window to size, so it is refused rather than ignored.
    if (!s.terminal) {
      return size->error("given without \"terminal\": true");
    }
    s.console_size = ConsoleSize{height.value_or(0), width.value_or(0)};
  }
  TRY_VOID(mustBeEmpty(p, "apparmorProfile"));
  TRY_VOID(mustBeEmpty(p, "selinuxLabel"));
  TRY(s.argv, p.optStrings("args"));
  if (s.argv.empty()) {
    return p.errorAt("args", "missing or empty");
  }
  TRY(s.env, p.optStrings("env"));
  TRY(Cursor cwd, p.field("cwd"));
  TRY(s.cwd, cwd.asString());
  TRY(std::optional<Cursor> u, p.opt("user"));
  if (u) {
    TRY_VOID(known(*u, {"uid", "gid", "umask", "additionalGids"}));
    TRY(auto uid, u->optNumber<uint32_t>("uid"));
    TRY(auto gid, u->optNumber<uint32_t>("gid"));
    TRY(auto umask, u->optNumber<uint32_t>("umask"));
    s.uid = uid.value_or(0);
    s.gid = gid.value_or(0);
    s.umask = umask.value_or(022);
    TRY(std::optional<Cursor> gids, u->optArray("additionalGids"));
    if (gids) {
      TRY_VOID(gids->each([&](const Cursor& g) -> Result<void> {
        TRY(gid_t v, g.asNumber<uint32_t>());
        s.additional_gids.push_back(v);
        return {};
      }));
    }
  }
  TRY(std::optional<Cursor> c, p.opt("capabilities"));
  if (c) {
    TRY_VOID(known(*c, {"bounding", "effective", "inheritable", "permitted", "ambient"}));
    TRY(s.capabilities.bounding, c->optStrings("bounding"));
    TRY(s.capabilities.effective, c->optStrings("effective"));
    TRY(s.capabilities.inheritable, c->optStrings("inheritable"));
    TRY(s.capabilities.permitted, c->optStrings("permitted"));
    TRY(s.capabilities.ambient, c->optStrings("ambient"));
  }
  TRY(std::optional<Cursor> rlimits, p.optArray("rlimits"));
  if (rlimits) {
    TRY_VOID(rlimits->each([&](const Cursor& l) -> Result<void> {
      TRY_VOID(known(l, {"type", "soft", "hard"}));
      TRY(std::string type, l.str("type"));
      TRY(auto soft, l.optUint64("soft"));
      TRY(auto hard, l.optUint64("hard"));
      s.rlimits.push_back({type, soft.value_or(0), hard.value_or(0)});
      return {};
    }));
  }
  TRY(s.no_new_privileges, p.optBool("noNewPrivileges"));
  TRY(s.oom_score_adj, p.optNumber<int>("oomScoreAdj"));
  return {};
}

Result<void> readMounts(const Cursor& doc, ContainerSpec& s) {
  TRY(std::optional<Cursor> mounts, doc.optArray("mounts"));
  if (!mounts) {
    return {};
  }
  return mounts->each([&](const Cursor& m) -> Result<void> {
    TRY_VOID(known(m, {"destination", "type", "source", "options"}));
    Mount mount;
    TRY(mount.destination, m.str("destination"));
    TRY(mount.type, m.optStr("type"));
    TRY(mount.source, m.optStr("source"));
    TRY(mount.options, m.optStrings("options"));
    bool bind = std::ranges::any_of(
        mount.options, [](const std::string& o) { return o == "bind" || o == "rbind"; });
    if (mount.type.empty() && !bind) {
      return m.errorAt("type", "missing (and options have no bind)");
    }
    s.mounts.push_back(std::move(mount));
    return {};
  });
}

Result<void> readResources(const Cursor& res, OciBundle& b) {
  TRY_VOID(known(res, {"devices", "memory", "cpu", "pids", "unified"}));
  TRY(std::optional<Cursor> devices, res.optArray("devices"));
  if (devices) {
    TRY_VOID(devices->each([&](const Cursor& d) -> Result<void> {
      TRY_VOID(known(d, {"allow", "type", "major", "minor", "access"}));
      cgroups::DeviceRule rule;
      TRY(rule.allow, d.optBool("allow"));
      TRY(std::string type, d.optStr("type"));
      rule.type = type.empty() ? 'a' : type[0];
      TRY(auto major, d.optInt64("major"));
      TRY(auto minor, d.optInt64("minor"));
      rule.major = major.value_or(-1);
      rule.minor = minor.value_or(-1);
      TRY(std::string access, d.optStr("access"));
      rule.access = access.empty() ? "rwm" : access;
      b.devices.push_back(rule);
      return {};
    }));
  }
  TRY(std::optional<Cursor> m, res.opt("memory"));
  if (m) {
    TRY_VOID(known(*m, {"limit", "reservation", "swap"}));
    TRY(auto limit, m->optInt64("limit"));
    TRY(auto reservation, m->optInt64("reservation"));
    TRY(auto swap, m->optInt64("swap"));
    b.limits.memory_max = limit;
    b.limits.memory_low = reservation;  // runc's mapping on cgroup v2
    if (swap) {
      // The spec's swap is memory+swap; memory.swap.max is swap alone.
      if (*swap == -1) {
        b.limits.memory_swap_max = -1;
      } else if (!limit || *limit < 0 || *swap < *limit) {
        return m->errorAt("swap", "needs a memory limit no larger than it");
      } else {
        b.limits.memory_swap_max = *swap - *limit;
      }
    }
  }
  TRY(std::optional<Cursor> c, res.opt("cpu"));
  if (c) {
    TRY_VOID(known(*c, {"shares", "quota", "period"}));
    TRY(auto shares, c->optUint64("shares"));
    TRY(auto quota, c->optInt64("quota"));
    TRY(auto period, c->optNumber<int64_t>("period"));
    if (period && *period <= 0) {
      return c->errorAt("period", "must be positive");
    }
    if (shares && *shares != 0) {
      b.limits.cpu_weight = cgroups::sharesToWeight(*shares);
    }
    if (quota || period) {
      b.limits.cpu_max =
          cgroups::CpuMax{quota.value_or(-1) > 0 ? *quota : -1, period.value_or(100000)};
    }
  }
  TRY(std::optional<Cursor> pids, res.opt("pids"));
  if (pids) {
    TRY_VOID(known(*pids, {"limit"}));
    TRY(auto limit, pids->optInt64("limit"));
    if (limit) {
      b.limits.pids_max = *limit <= 0 ? -1 : *limit;
    }
  }
  TRY(std::optional<Cursor> unified, res.optObject("unified"));
  if (unified) {
    TRY_VOID(unified->members([&](const std::string& file, const Cursor& v) -> Result<void> {
      if (file.empty() || file.find('/') != std::string::npos || !v.isString()) {
        return v.error("must be a cgroup file name with a string value");
      }
      TRY(b.unified[file], v.asString());
      return {};
    }));
  }
  return {};
}

Result<Namespace> namespaceType(const Cursor& field) {
  static const std::map<std::string, Namespace> types = {
      {"pid", Namespace::kPid},       {"network", Namespace::kNet}, {"mount", Namespace::kMount},
      {"ipc", Namespace::kIpc},       {"uts", Namespace::kUts},     {"user", Namespace::kUser},
      {"cgroup", Namespace::kCgroup},
  };
  TRY(std::string type, field.asString());
  auto it = types.find(type);
  if (it == types.end()) {
    return field.error("unsupported namespace type \"" + type + "\"");
  }
  return it->second;
}

// Does the container get a namespace of its own of this type? A new one does;
// one joined by path does unless it is the namespace kernelet itself runs in
// (runc's isHostNetNS, applied to every type).
Result<bool> privateNamespace(const Cursor& field, const ContainerSpec& s, Namespace type,
                              const char* proc_name) {
  for (const NamespaceRef& n : s.namespaces) {
    if (n.type != type) {
      continue;
    }
    if (n.path.empty()) {
      return true;
    }
    struct stat ours {
    }, theirs{};
    std::string self = std::string("/proc/self/ns/") + proc_name;
    if (::stat(self.c_str(), &ours) != 0 || ::stat(n.path.c_str(), &theirs) != 0) {
      int err = errno;
      return field.error("cannot tell whether namespace " + n.path +
                         " is the host's: " + std::strerror(err));
    }
    return ours.st_dev != theirs.st_dev || ours.st_ino != theirs.st_ino;
  }
  return false;
}

Result<void> readSysctls(const Cursor& l, ContainerSpec& s) {
  TRY(std::optional<Cursor> sysctls, l.optObject("sysctl"));
  if (!sysctls) {
    return {};
  }
  return sysctls->members([&](const std::string& name, const Cursor& v) -> Result<void> {
    TRY(std::string value, v.asString());
    // Only the namespace the name lives in is looked at (a joined one is stat'ed).
    bool net = false, uts = false, ipc = false;
    if (name.starts_with("net.")) {
      TRY(net, privateNamespace(v, s, Namespace::kNet, "net"));
    } else if (name == "kernel.hostname" || name == "kernel.domainname") {
      TRY(uts, privateNamespace(v, s, Namespace::kUts, "uts"));
    } else {
      TRY(ipc, privateNamespace(v, s, Namespace::kIpc, "ipc"));
    }
    if (auto ok = validateSysctl(name, net, uts, ipc); !ok) {
      return v.error(ok.error().detail);
    }
    s.sysctls.push_back({name, value});
    return {};
  });
}

Result<void> readLinux(const Cursor& l, OciBundle& b) {
  TRY_VOID(known(
      l, {"namespaces", "uidMappings", "gidMappings", "devices", "cgroupsPath", "resources",
          "rootfsPropagation", "seccomp", "sysctl", "maskedPaths", "readonlyPaths", "mountLabel"}));
  TRY_VOID(mustBeEmpty(l, "uidMappings"));
  TRY_VOID(mustBeEmpty(l, "gidMappings"));
  TRY_VOID(mustBeEmpty(l, "devices"));
  TRY_VOID(mustBeEmpty(l, "mountLabel"));
  ContainerSpec& s = b.spec;
  TRY(std::optional<Cursor> namespaces, l.optArray("namespaces"));
  if (namespaces) {
    TRY_VOID(namespaces->each([&](const Cursor& n) -> Result<void> {
      TRY_VOID(known(n, {"type", "path"}));
      TRY(Cursor type, n.field("type"));
      TRY(Namespace t, namespaceType(type));
      TRY(std::string path, n.optStr("path"));
      s.namespaces.push_back({t, path});
      return {};
    }));
  }
  TRY(b.cgroups_path, l.optStr("cgroupsPath"));
  TRY(std::optional<Cursor> resources, l.opt("resources"));
  if (resources) {
    TRY_VOID(readResources(*resources, b));
  }
  TRY(std::string propagation, l.optStr("rootfsPropagation"));
  static const std::map<std::string, unsigned long> props = {
      {"", 0},
      {"private", MS_PRIVATE},
      {"rprivate", MS_PRIVATE | MS_REC},
      {"slave", MS_SLAVE},
      {"rslave", MS_SLAVE | MS_REC},
      {"shared", MS_SHARED},
      {"rshared", MS_SHARED | MS_REC},
      {"unbindable", MS_UNBINDABLE},
      {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  if (!props.contains(propagation)) {
    return l.errorAt("rootfsPropagation", "unknown value \"" + propagation + "\"");
  }
  s.rootfs_propagation = props.at(propagation);
  TRY(std::optional<Cursor> seccomp, l.opt("seccomp"));
  if (seccomp) {
    // The seccomp object keeps its own text; the seccomp compiler checks its
    // fields. The writer recurses, which the parser's depth limit keeps safe.
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    seccomp->value().Accept(w);
    s.seccomp = {SeccompProfile::Kind::kJson, std::string(buf.GetString(), buf.GetSize()),
                 b.dir + "/config.json linux.seccomp"};
  } else {
    s.seccomp.kind = SeccompProfile::Kind::kUnconfined;  // OCI: no seccomp unless asked
  }
  TRY_VOID(readSysctls(l, s));
  TRY(s.masked_paths, l.optStrings("maskedPaths"));
  TRY(s.readonly_paths, l.optStrings("readonlyPaths"));
  return {};
}

}  // namespace

Result<OciBundle> parseOciConfig(const std::string& json, const std::string& dir) {
  const std::string file = dir + "/config.json";
  TRY(rapidjson::Document doc, json::parse(json, kOp, file));
  Cursor top(doc, kOp, file);
  TRY_VOID(known(top, {"ociVersion", "process", "root", "hostname", "domainname", "mounts", "hooks",
                       "annotations", "linux"}));
  OciBundle b;
  b.dir = dir;
  TRY(b.oci_version, top.str("ociVersion"));
  if (!b.oci_version.starts_with("1.")) {
    return top.errorAt("ociVersion", "unsupported version \"" + b.oci_version + "\"");
  }
  TRY_VOID(mustBeEmpty(top, "hooks"));
  TRY_VOID(mustBeEmpty(top, "domainname"));
  TRY(Cursor process, top.field("process"));
  TRY_VOID(readProcess(process, b.spec));
  TRY(Cursor root, top.field("root"));
  TRY_VOID(known(root, {"path", "readonly"}));
  TRY(std::string root_path, root.str("path"));
  b.spec.rootfs = root_path.starts_with("/") ? root_path : dir + "/" + root_path;
  TRY(b.spec.readonly_rootfs, root.optBool("readonly"));
  TRY(b.spec.hostname, top.optStr("hostname"));
  TRY_VOID(readMounts(top, b.spec));
  TRY(b.annotations, top.optStringMap("annotations"));
  TRY(std::optional<Cursor> linux, top.opt("linux"));
  if (linux) {
    TRY_VOID(readLinux(*linux, b));
  } else {
    b.spec.seccomp.kind = SeccompProfile::Kind::kUnconfined;
  }
  return b;
}

Result<OciBundle> loadOciBundle(const std::string& dir) {
  char abs[PATH_MAX];
  if (::realpath(dir.c_str(), abs) == nullptr) {
    return sysError("open bundle", dir);
  }
  TRY(std::string text, readFile(std::string(abs) + "/config.json"));
  return parseOciConfig(text, abs);
}

}  // namespace kernelet::isolation
