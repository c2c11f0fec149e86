#include "isolation/oci_config.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/mount.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <set>
#include <type_traits>

#include "sys/fileio.h"

namespace kernelet::isolation {

namespace {

using rapidjson::Value;

// Parsing context: where we are, for errors like
//   config.json `/b/config.json`: linux.resources.blockIO: not supported
struct Reader {
  std::string file;

  std::unexpected<Error> error(const std::string& field, const std::string& what) const {
    return makeError("config.json", file, field + ": " + what);
  }

  // Every member of `obj` must be known; `ignored` ones are accepted as no-ops
  // only where the spec lets a runtime ignore them.
  Result<void> known(const Value& obj, const std::string& field,
                     const std::set<std::string>& supported) const {
    if (!obj.IsObject()) {
      return error(field, "must be an object");
    }
    for (auto m = obj.MemberBegin(); m != obj.MemberEnd(); ++m) {
      std::string name = m->name.GetString();
      if (!supported.contains(name)) {
        return error(field.empty() ? name : field + "." + name, "not supported by kernelet");
      }
    }
    return {};
  }

  // A field that may be present only if empty (null, "", [] or {}).
  Result<void> mustBeEmpty(const Value& obj, const char* key, const std::string& field) const {
    if (!obj.HasMember(key)) {
      return {};
    }
    const Value& v = obj[key];
    bool empty = v.IsNull() || (v.IsString() && v.GetStringLength() == 0) ||
                 (v.IsArray() && v.Empty()) || (v.IsObject() && v.MemberCount() == 0);
    if (!empty) {
      return error(field.empty() ? key : field + "." + key, "not supported by kernelet");
    }
    return {};
  }

  Result<std::string> str(const Value& obj, const char* key, const std::string& field,
                          bool required = false) const {
    if (!obj.HasMember(key)) {
      if (required) {
        return error(field + "." + key, "missing");
      }
      return std::string();
    }
    if (!obj[key].IsString()) {
      return error(field + "." + key, "must be a string");
    }
    return std::string(obj[key].GetString());
  }

  Result<std::vector<std::string>> strings(const Value& obj, const char* key,
                                           const std::string& field) const {
    std::vector<std::string> out;
    if (!obj.HasMember(key) || obj[key].IsNull()) {
      return out;
    }
    if (!obj[key].IsArray()) {
      return error(field + "." + key, "must be an array of strings");
    }
    for (const auto& v : obj[key].GetArray()) {
      if (!v.IsString()) {
        return error(field + "." + key, "must be an array of strings");
      }
      out.emplace_back(v.GetString());
    }
    return out;
  }

  template <typename T>
  Result<std::optional<T>> number(const Value& obj, const char* key,
                                  const std::string& field) const {
    if (!obj.HasMember(key) || obj[key].IsNull()) {
      return std::optional<T>();
    }
    const Value& v = obj[key];
    if constexpr (std::is_signed_v<T>) {
      if (v.IsInt64()) {
        return std::optional<T>(static_cast<T>(v.GetInt64()));
      }
    } else {
      if (v.IsUint64()) {
        return std::optional<T>(static_cast<T>(v.GetUint64()));
      }
    }
    return error(field + "." + key, "must be an integer");
  }
};

Result<void> readProcess(const Reader& r, const Value& p, ContainerSpec& s) {
  TRY_VOID(
      r.known(p, "process",
              {"terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities", "rlimits",
               "noNewPrivileges", "oomScoreAdj", "apparmorProfile", "selinuxLabel"}));
  if (p.HasMember("terminal") && p["terminal"].IsTrue()) {
    return r.error("process.terminal",
                   "true is not supported (no console socket); set it to false");
  }
  TRY_VOID(r.mustBeEmpty(p, "apparmorProfile", "process"));
  TRY_VOID(r.mustBeEmpty(p, "selinuxLabel", "process"));
  TRY(s.argv, r.strings(p, "args", "process"));
  if (s.argv.empty()) {
    return r.error("process.args", "missing or empty");
  }
  TRY(s.env, r.strings(p, "env", "process"));
  TRY(s.cwd, r.str(p, "cwd", "process", /*required=*/true));
  if (p.HasMember("user")) {
    const Value& u = p["user"];
    TRY_VOID(r.known(u, "process.user", {"uid", "gid", "umask", "additionalGids"}));
    TRY(auto uid, r.number<uint32_t>(u, "uid", "process.user"));
    TRY(auto gid, r.number<uint32_t>(u, "gid", "process.user"));
    TRY(auto umask, r.number<uint32_t>(u, "umask", "process.user"));
    s.uid = uid.value_or(0);
    s.gid = gid.value_or(0);
    s.umask = umask.value_or(022);
    if (u.HasMember("additionalGids") && u["additionalGids"].IsArray()) {
      for (const auto& g : u["additionalGids"].GetArray()) {
        s.additional_gids.push_back(g.GetUint());
      }
    }
  }
  if (p.HasMember("capabilities")) {
    const Value& c = p["capabilities"];
    TRY_VOID(r.known(c, "process.capabilities",
                     {"bounding", "effective", "inheritable", "permitted", "ambient"}));
    TRY(s.capabilities.bounding, r.strings(c, "bounding", "process.capabilities"));
    TRY(s.capabilities.effective, r.strings(c, "effective", "process.capabilities"));
    TRY(s.capabilities.inheritable, r.strings(c, "inheritable", "process.capabilities"));
    TRY(s.capabilities.permitted, r.strings(c, "permitted", "process.capabilities"));
    TRY(s.capabilities.ambient, r.strings(c, "ambient", "process.capabilities"));
  }
  if (p.HasMember("rlimits") && p["rlimits"].IsArray()) {
    size_t i = 0;
    for (const auto& l : p["rlimits"].GetArray()) {
      std::string f = "process.rlimits[" + std::to_string(i++) + "]";
      TRY_VOID(r.known(l, f, {"type", "soft", "hard"}));
      TRY(std::string type, r.str(l, "type", f, true));
      TRY(auto soft, r.number<uint64_t>(l, "soft", f));
      TRY(auto hard, r.number<uint64_t>(l, "hard", f));
      s.rlimits.push_back({type, soft.value_or(0), hard.value_or(0)});
    }
  }
  s.no_new_privileges = p.HasMember("noNewPrivileges") && p["noNewPrivileges"].IsTrue();
  TRY(auto oom, r.number<int>(p, "oomScoreAdj", "process"));
  s.oom_score_adj = oom;
  return {};
}

Result<void> readMounts(const Reader& r, const Value& doc, ContainerSpec& s) {
  if (!doc.HasMember("mounts") || !doc["mounts"].IsArray()) {
    return {};
  }
  size_t i = 0;
  for (const auto& m : doc["mounts"].GetArray()) {
    std::string f = "mounts[" + std::to_string(i++) + "]";
    TRY_VOID(r.known(m, f, {"destination", "type", "source", "options"}));
    Mount mount;
    TRY(mount.destination, r.str(m, "destination", f, true));
    TRY(mount.type, r.str(m, "type", f));
    TRY(mount.source, r.str(m, "source", f));
    TRY(mount.options, r.strings(m, "options", f));
    bool bind = std::ranges::any_of(
        mount.options, [](const std::string& o) { return o == "bind" || o == "rbind"; });
    if (mount.type.empty() && !bind) {
      return r.error(f + ".type", "missing (and options have no bind)");
    }
    s.mounts.push_back(std::move(mount));
  }
  return {};
}

Result<void> readResources(const Reader& r, const Value& res, OciBundle& b) {
  const std::string f = "linux.resources";
  TRY_VOID(r.known(res, f, {"devices", "memory", "cpu", "pids", "unified"}));
  if (res.HasMember("devices") && res["devices"].IsArray()) {
    size_t i = 0;
    for (const auto& d : res["devices"].GetArray()) {
      std::string df = f + ".devices[" + std::to_string(i++) + "]";
      TRY_VOID(r.known(d, df, {"allow", "type", "major", "minor", "access"}));
      cgroups::DeviceRule rule;
      rule.allow = d.HasMember("allow") && d["allow"].IsTrue();
      TRY(std::string type, r.str(d, "type", df));
      rule.type = type.empty() ? 'a' : type[0];
      TRY(auto major, r.number<int64_t>(d, "major", df));
      TRY(auto minor, r.number<int64_t>(d, "minor", df));
      rule.major = major.value_or(-1);
      rule.minor = minor.value_or(-1);
      TRY(std::string access, r.str(d, "access", df));
      rule.access = access.empty() ? "rwm" : access;
      b.devices.push_back(rule);
    }
  }
  if (res.HasMember("memory")) {
    const Value& m = res["memory"];
    TRY_VOID(r.known(m, f + ".memory", {"limit", "reservation", "swap"}));
    TRY(auto limit, r.number<int64_t>(m, "limit", f + ".memory"));
    TRY(auto reservation, r.number<int64_t>(m, "reservation", f + ".memory"));
    TRY(auto swap, r.number<int64_t>(m, "swap", f + ".memory"));
    b.limits.memory_max = limit;
    b.limits.memory_low = reservation;  // runc's mapping on cgroup v2
    if (swap) {
      // The spec's swap is memory+swap; memory.swap.max is swap alone.
      if (*swap == -1) {
        b.limits.memory_swap_max = -1;
      } else if (!limit || *limit < 0 || *swap < *limit) {
        return r.error(f + ".memory.swap", "needs a memory limit no larger than it");
      } else {
        b.limits.memory_swap_max = *swap - *limit;
      }
    }
  }
  if (res.HasMember("cpu")) {
    const Value& c = res["cpu"];
    TRY_VOID(r.known(c, f + ".cpu", {"shares", "quota", "period"}));
    TRY(auto shares, r.number<uint64_t>(c, "shares", f + ".cpu"));
    TRY(auto quota, r.number<int64_t>(c, "quota", f + ".cpu"));
    TRY(auto period, r.number<uint64_t>(c, "period", f + ".cpu"));
    if (shares && *shares != 0) {
      b.limits.cpu_weight = cgroups::sharesToWeight(*shares);
    }
    if (quota || period) {
      b.limits.cpu_max = cgroups::CpuMax{quota.value_or(-1) > 0 ? *quota : -1,
                                         static_cast<int64_t>(period.value_or(100000))};
    }
  }
  if (res.HasMember("pids")) {
    TRY_VOID(r.known(res["pids"], f + ".pids", {"limit"}));
    TRY(auto limit, r.number<int64_t>(res["pids"], "limit", f + ".pids"));
    if (limit) {
      b.limits.pids_max = *limit <= 0 ? -1 : *limit;
    }
  }
  if (res.HasMember("unified") && res["unified"].IsObject()) {
    for (auto m = res["unified"].MemberBegin(); m != res["unified"].MemberEnd(); ++m) {
      std::string file = m->name.GetString();
      if (file.find('/') != std::string::npos || !m->value.IsString()) {
        return r.error(f + ".unified." + file, "must be a cgroup file name with a string value");
      }
      b.unified[file] = m->value.GetString();
    }
  }
  return {};
}

Result<Namespace> namespaceType(const Reader& r, const std::string& type,
                                const std::string& field) {
  static const std::map<std::string, Namespace> types = {
      {"pid", Namespace::kPid},       {"network", Namespace::kNet}, {"mount", Namespace::kMount},
      {"ipc", Namespace::kIpc},       {"uts", Namespace::kUts},     {"user", Namespace::kUser},
      {"cgroup", Namespace::kCgroup},
  };
  auto it = types.find(type);
  if (it == types.end()) {
    return r.error(field, "unsupported namespace type \"" + type + "\"");
  }
  return it->second;
}

Result<void> readLinux(const Reader& r, const Value& l, OciBundle& b) {
  TRY_VOID(r.known(
      l, "linux",
      {"namespaces", "uidMappings", "gidMappings", "devices", "cgroupsPath", "resources",
       "rootfsPropagation", "seccomp", "sysctl", "maskedPaths", "readonlyPaths", "mountLabel"}));
  TRY_VOID(r.mustBeEmpty(l, "uidMappings", "linux"));
  TRY_VOID(r.mustBeEmpty(l, "gidMappings", "linux"));
  TRY_VOID(r.mustBeEmpty(l, "devices", "linux"));
  TRY_VOID(r.mustBeEmpty(l, "mountLabel", "linux"));
  ContainerSpec& s = b.spec;
  if (l.HasMember("namespaces") && l["namespaces"].IsArray()) {
    size_t i = 0;
    for (const auto& n : l["namespaces"].GetArray()) {
      std::string f = "linux.namespaces[" + std::to_string(i++) + "]";
      TRY_VOID(r.known(n, f, {"type", "path"}));
      TRY(std::string type, r.str(n, "type", f, true));
      TRY(Namespace t, namespaceType(r, type, f + ".type"));
      TRY(std::string path, r.str(n, "path", f));
      s.namespaces.push_back({t, path});
    }
  }
  TRY(b.cgroups_path, r.str(l, "cgroupsPath", "linux"));
  if (l.HasMember("resources")) {
    TRY_VOID(readResources(r, l["resources"], b));
  }
  TRY(std::string propagation, r.str(l, "rootfsPropagation", "linux"));
  static const std::map<std::string, unsigned long> props = {
      {"", 0},
      {"private", MS_PRIVATE},
      {"rprivate", MS_PRIVATE | MS_REC},
      {"slave", MS_SLAVE},
      {"rslave", MS_SLAVE | MS_REC},
      {"shared", MS_SHARED},
      {"rshared", MS_SHARED | MS_REC},
  };
  if (!props.contains(propagation)) {
    return r.error("linux.rootfsPropagation", "unknown value \"" + propagation + "\"");
  }
  s.rootfs_propagation = props.at(propagation);
  if (l.HasMember("seccomp") && !l["seccomp"].IsNull()) {
    // The seccomp object keeps its own text; the seccomp compiler checks its fields.
    const Value& sc = l["seccomp"];
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    sc.Accept(w);
    s.seccomp = {SeccompProfile::Kind::kJson, buf.GetString(), r.file + " linux.seccomp"};
  } else {
    s.seccomp.kind = SeccompProfile::Kind::kUnconfined;  // OCI: no seccomp unless asked
  }
  if (l.HasMember("sysctl") && l["sysctl"].IsObject()) {
    for (auto m = l["sysctl"].MemberBegin(); m != l["sysctl"].MemberEnd(); ++m) {
      if (!m->value.IsString()) {
        return r.error(std::string("linux.sysctl.") + m->name.GetString(), "must be a string");
      }
      s.sysctls.push_back({m->name.GetString(), m->value.GetString()});
    }
  }
  TRY(s.masked_paths, r.strings(l, "maskedPaths", "linux"));
  TRY(s.readonly_paths, r.strings(l, "readonlyPaths", "linux"));
  return {};
}

}  // namespace

Result<OciBundle> parseOciConfig(const std::string& json, const std::string& dir) {
  Reader r{dir + "/config.json"};
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError()) {
    return r.error("offset " + std::to_string(doc.GetErrorOffset()),
                   rapidjson::GetParseError_En(doc.GetParseError()));
  }
  TRY_VOID(r.known(doc, "",
                   {"ociVersion", "process", "root", "hostname", "domainname", "mounts", "hooks",
                    "annotations", "linux"}));
  OciBundle b;
  b.dir = dir;
  TRY(b.oci_version, r.str(doc, "ociVersion", "", true));
  if (!b.oci_version.starts_with("1.")) {
    return r.error("ociVersion", "unsupported version \"" + b.oci_version + "\"");
  }
  TRY_VOID(r.mustBeEmpty(doc, "hooks", ""));
  TRY_VOID(r.mustBeEmpty(doc, "domainname", ""));
  if (!doc.HasMember("process")) {
    return r.error("process", "missing");
  }
  TRY_VOID(readProcess(r, doc["process"], b.spec));
  if (!doc.HasMember("root")) {
    return r.error("root", "missing");
  }
  TRY_VOID(r.known(doc["root"], "root", {"path", "readonly"}));
  TRY(std::string root, r.str(doc["root"], "path", "root", true));
  b.spec.rootfs = root.starts_with("/") ? root : dir + "/" + root;
  b.spec.readonly_rootfs = doc["root"].HasMember("readonly") && doc["root"]["readonly"].IsTrue();
  TRY(b.spec.hostname, r.str(doc, "hostname", ""));
  TRY_VOID(readMounts(r, doc, b.spec));
  if (doc.HasMember("annotations") && doc["annotations"].IsObject()) {
    for (auto m = doc["annotations"].MemberBegin(); m != doc["annotations"].MemberEnd(); ++m) {
      if (m->value.IsString()) {
        b.annotations[m->name.GetString()] = m->value.GetString();
      }
    }
  }
  if (doc.HasMember("linux")) {
    TRY_VOID(readLinux(r, doc["linux"], b));
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
