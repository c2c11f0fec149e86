#include "isolation/seccomp.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "sys/unique_fd.h"

namespace kernelet::isolation {

namespace {

using rapidjson::Value;

// What every compile step needs to report a clear error.
struct Ctx {
  std::string origin;
  std::set<std::string> caps;
  std::string kernel;  // uname release, for includes.minKernel
};

std::unexpected<Error> fieldError(const Ctx& c, const std::string& field, const std::string& what) {
  return makeError("seccomp profile", c.origin, field + ": " + what);
}

Result<uint32_t> parseAction(const Ctx& c, const std::string& field, const std::string& name,
                             int errno_ret) {
  static const std::map<std::string, uint32_t> fixed = {
      {"SCMP_ACT_KILL", SCMP_ACT_KILL},
      {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
      {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
      {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
      {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
      {"SCMP_ACT_LOG", SCMP_ACT_LOG},
  };
  if (auto it = fixed.find(name); it != fixed.end()) {
    return it->second;
  }
  if (name == "SCMP_ACT_ERRNO") {
    return SCMP_ACT_ERRNO(static_cast<uint16_t>(errno_ret));
  }
  if (name == "SCMP_ACT_TRACE") {
    return SCMP_ACT_TRACE(static_cast<uint16_t>(errno_ret));
  }
  return fieldError(c, field, "unsupported action \"" + name + "\"");
}

Result<scmp_compare> parseOp(const Ctx& c, const std::string& field, const std::string& op) {
  static const std::map<std::string, scmp_compare> ops = {
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  auto it = ops.find(op);
  if (it == ops.end()) {
    return fieldError(c, field, "unsupported operator \"" + op + "\"");
  }
  return it->second;
}

Result<uint32_t> parseArch(const Ctx& c, const std::string& field, const std::string& name) {
  static const std::map<std::string, uint32_t> arches = {
      {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64}, {"SCMP_ARCH_X86", SCMP_ARCH_X86},
      {"SCMP_ARCH_X32", SCMP_ARCH_X32},       {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},
      {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
  };
  auto it = arches.find(name);
  if (it == arches.end()) {
    return fieldError(c, field, "unsupported architecture \"" + name + "\"");
  }
  return it->second;
}

// "5.10" <= "6.1.0-56-amd64"?
bool kernelAtLeast(const std::string& have, const std::string& want) {
  int h1 = 0, h2 = 0, w1 = 0, w2 = 0;
  std::sscanf(have.c_str(), "%d.%d", &h1, &h2);
  std::sscanf(want.c_str(), "%d.%d", &w1, &w2);
  return h1 != w1 ? h1 > w1 : h2 >= w2;
}

// The strings of obj[key], when it is an array.
std::vector<std::string> strings(const Value& obj, const char* key) {
  std::vector<std::string> out;
  if (obj.IsObject() && obj.HasMember(key) && obj[key].IsArray()) {
    for (const auto& s : obj[key].GetArray()) {
      if (s.IsString()) {
        out.emplace_back(s.GetString());
      }
    }
  }
  return out;
}

// Docker's includes/excludes: does this rule apply to this container on amd64?
Result<bool> applies(const Ctx& c, const Value& rule, const std::string& field) {
  auto check = [&](const char* key, bool include) -> Result<bool> {
    if (!rule.HasMember(key)) {
      return true;
    }
    const Value& f = rule[key];
    for (auto m = f.MemberBegin(); m != f.MemberEnd(); ++m) {
      std::string k = m->name.GetString();
      if (k != "caps" && k != "arches" && k != "minKernel") {
        return fieldError(c, field + "." + key + "." + k, "unknown field");
      }
    }
    bool all_caps = true, any_cap = false;
    for (const auto& cap : strings(f, "caps")) {
      bool has = c.caps.contains(cap);
      all_caps = all_caps && has;
      any_cap = any_cap || has;
    }
    auto arches = strings(f, "arches");
    bool arch_match = std::find(arches.begin(), arches.end(), "amd64") != arches.end();
    if (include) {
      bool ok = all_caps && (arches.empty() || arch_match);
      if (f.HasMember("minKernel") && f["minKernel"].IsString()) {
        ok = ok && kernelAtLeast(c.kernel, f["minKernel"].GetString());
      }
      return ok;
    }
    return !any_cap && !arch_match;
  };
  TRY(bool inc, check("includes", true));
  TRY(bool exc, check("excludes", false));
  return inc && exc;
}

Result<void> addRule(const Ctx& c, scmp_filter_ctx ctx, const Value& rule, size_t i,
                     uint32_t default_action) {
  std::string field = "syscalls[" + std::to_string(i) + "]";
  static const std::set<std::string> known = {"names", "name",     "action",   "errnoRet",
                                              "args",  "includes", "excludes", "comment"};
  for (auto m = rule.MemberBegin(); m != rule.MemberEnd(); ++m) {
    if (!known.contains(m->name.GetString())) {
      return fieldError(c, field + "." + m->name.GetString(), "unknown field");
    }
  }
  TRY(bool use, applies(c, rule, field));
  if (!use) {
    return {};
  }
  if (!rule.HasMember("action") || !rule["action"].IsString()) {
    return fieldError(c, field + ".action", "missing");
  }
  int errno_ret = rule.HasMember("errnoRet") ? rule["errnoRet"].GetInt() : EPERM;
  TRY(uint32_t action, parseAction(c, field + ".action", rule["action"].GetString(), errno_ret));
  if (action == default_action) {
    return {};  // libseccomp refuses rules that repeat the default
  }
  std::vector<std::string> names = strings(rule, "names");
  if (rule.HasMember("name") && rule["name"].IsString()) {
    names.emplace_back(rule["name"].GetString());
  }
  std::vector<scmp_arg_cmp> args;
  std::set<unsigned> indexes;
  if (rule.HasMember("args") && rule["args"].IsArray()) {
    size_t j = 0;
    for (const auto& a : rule["args"].GetArray()) {
      std::string af = field + ".args[" + std::to_string(j++) + "]";
      if (!a.HasMember("index") || !a.HasMember("op") || !a["op"].IsString()) {
        return fieldError(c, af, "needs index and op");
      }
      TRY(scmp_compare op, parseOp(c, af + ".op", a["op"].GetString()));
      uint64_t value = a.HasMember("value") ? a["value"].GetUint64() : 0;
      uint64_t two = a.HasMember("valueTwo") ? a["valueTwo"].GetUint64() : 0;
      unsigned index = a["index"].GetUint();
      args.push_back(scmp_arg_cmp{.arg = index, .op = op, .datum_a = value, .datum_b = two});
      indexes.insert(index);
    }
  }
  for (const std::string& name : names) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      continue;  // not a syscall of this architecture (e.g. chown32 on x86-64)
    }
    // Comparisons on distinct arguments must all hold (one rule); several on
    // the same argument are alternatives (one rule each), as runc reads them.
    int rc = 0;
    if (indexes.size() == args.size()) {
      rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(args.size()),
                                  args.empty() ? nullptr : args.data());
    } else {
      for (const scmp_arg_cmp& a : args) {
        rc = seccomp_rule_add_array(ctx, action, nr, 1, &a);
        if (rc != 0) {
          break;
        }
      }
    }
    if (rc != 0) {
      return sysError(-rc, "seccomp_rule_add " + name, c.origin);
    }
  }
  return {};
}

Result<std::vector<sock_filter>> exportBpf(scmp_filter_ctx ctx) {
  UniqueFd mem(::memfd_create("seccomp-bpf", MFD_CLOEXEC));
  if (!mem) {
    return sysError("memfd_create");
  }
  if (int rc = seccomp_export_bpf(ctx, mem.get()); rc != 0) {
    return sysError(-rc, "seccomp_export_bpf");
  }
  off_t size = ::lseek(mem.get(), 0, SEEK_END);
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(mem.get(), prog.data(), static_cast<size_t>(size), 0) != size) {
    return sysError("read", "seccomp bpf");
  }
  return prog;
}

}  // namespace

Result<SeccompProgram> compileSeccomp(const SeccompProfile& profile,
                                      const std::vector<std::string>& bounding_caps) {
  if (profile.kind == SeccompProfile::Kind::kUnconfined) {
    return SeccompProgram{};
  }
  Ctx c;
  c.origin =
      profile.kind == SeccompProfile::Kind::kRuntimeDefault ? "RuntimeDefault" : profile.origin;
  c.caps = {bounding_caps.begin(), bounding_caps.end()};
  utsname u{};
  ::uname(&u);
  c.kernel = u.release;
  const std::string& text = profile.kind == SeccompProfile::Kind::kRuntimeDefault
                                ? runtimeDefaultSeccompJson()
                                : profile.json;

  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError()) {
    return fieldError(c, "offset " + std::to_string(doc.GetErrorOffset()),
                      rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) {
    return fieldError(c, "(top)", "not a JSON object");
  }
  static const std::set<std::string> known = {"defaultAction", "defaultErrnoRet", "architectures",
                                              "archMap",       "syscalls",        "comment",
                                              "flags"};
  for (auto m = doc.MemberBegin(); m != doc.MemberEnd(); ++m) {
    std::string k = m->name.GetString();
    if (!known.contains(k)) {
      return fieldError(c, k, "unknown or unsupported field");
    }
  }
  if (doc.HasMember("flags") && doc["flags"].IsArray() && !doc["flags"].Empty()) {
    return fieldError(c, "flags", "seccomp filter flags are not supported");
  }
  if (!doc.HasMember("defaultAction") || !doc["defaultAction"].IsString()) {
    return fieldError(c, "defaultAction", "missing");
  }
  int default_errno = doc.HasMember("defaultErrnoRet") ? doc["defaultErrnoRet"].GetInt() : EPERM;
  TRY(uint32_t default_action,
      parseAction(c, "defaultAction", doc["defaultAction"].GetString(), default_errno));

  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(default_action),
                                                       seccomp_release);
  if (!ctx) {
    return makeError("seccomp_init", c.origin, "failed");
  }
  // Syscalls made through the x86 and x32 ABIs get the same rules when the
  // profile lists those architectures; any other ABI is killed (libseccomp's
  // bad-arch action), so it cannot be used to slip past the rules.
  std::vector<std::string> arch_names = strings(doc, "architectures");
  if (doc.HasMember("archMap") && doc["archMap"].IsArray()) {
    for (const auto& m : doc["archMap"].GetArray()) {
      if (m.HasMember("architecture") &&
          std::string(m["architecture"].GetString()) == "SCMP_ARCH_X86_64") {
        for (auto& s : strings(m, "subArchitectures")) {
          arch_names.push_back(s);
        }
      }
    }
  }
  for (const std::string& a : arch_names) {
    TRY(uint32_t arch, parseArch(c, "architectures", a));
    if (arch == SCMP_ARCH_X86_64 || arch == SCMP_ARCH_AARCH64 || arch == SCMP_ARCH_ARM) {
      continue;  // native, or not runnable here
    }
    int rc = seccomp_arch_add(ctx.get(), arch);
    if (rc != 0 && rc != -EEXIST) {
      return sysError(-rc, "seccomp_arch_add " + a, c.origin);
    }
  }
  if (doc.HasMember("syscalls") && doc["syscalls"].IsArray()) {
    size_t i = 0;
    for (const auto& rule : doc["syscalls"].GetArray()) {
      TRY_VOID(addRule(c, ctx.get(), rule, i++, default_action));
    }
  }
  TRY(auto prog, exportBpf(ctx.get()));
  return SeccompProgram{std::move(prog)};
}

}  // namespace kernelet::isolation
