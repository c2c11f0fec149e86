#include "isolation/seccomp.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "sys/json.h"
#include "sys/unique_fd.h"

namespace kernelet::isolation {

namespace {

using json::Cursor;

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

// Docker's includes/excludes: does this rule apply to this container on amd64?
Result<bool> applies(const Ctx& c, const Cursor& rule) {
  auto check = [&](const char* key, bool include) -> Result<bool> {
    TRY(std::optional<Cursor> f, rule.optObject(key));
    if (!f) {
      return true;
    }
    TRY_VOID(f->onlyKeys({"caps", "arches", "minKernel"}));
    TRY(std::vector<std::string> caps, f->optStrings("caps"));
    bool all_caps = true, any_cap = false;
    for (const auto& cap : caps) {
      bool has = c.caps.contains(cap);
      all_caps = all_caps && has;
      any_cap = any_cap || has;
    }
    TRY(std::vector<std::string> arches, f->optStrings("arches"));
    bool arch_match = std::find(arches.begin(), arches.end(), "amd64") != arches.end();
    if (include) {
      bool ok = all_caps && (arches.empty() || arch_match);
      TRY(std::string min_kernel, f->optStr("minKernel"));
      if (!min_kernel.empty()) {
        ok = ok && kernelAtLeast(c.kernel, min_kernel);
      }
      return ok;
    }
    return !any_cap && !arch_match;
  };
  TRY(bool inc, check("includes", true));
  TRY(bool exc, check("excludes", false));
  return inc && exc;
}

// An errnoRet: the errno a rule returns, which the kernel carries in 16 bits.
Result<int> errnoRet(const Cursor& obj, const char* key) {
  TRY(std::optional<uint16_t> e, obj.optNumber<uint16_t>(key));
  return e ? static_cast<int>(*e) : EPERM;
}

Result<void> addRule(const Ctx& c, scmp_filter_ctx ctx, const Cursor& rule,
                     uint32_t default_action) {
  TRY_VOID(rule.expectObject());
  TRY_VOID(rule.onlyKeys(
      {"names", "name", "action", "errnoRet", "args", "includes", "excludes", "comment"}));
  TRY(bool use, applies(c, rule));
  if (!use) {
    return {};
  }
  if (!rule.has("action")) {
    return rule.errorAt("action", "missing");
  }
  TRY(Cursor action_field, rule.field("action"));
  TRY(std::string action_name, action_field.asString());
  TRY(int errno_ret, errnoRet(rule, "errnoRet"));
  TRY(uint32_t action, parseAction(c, action_field.path(), action_name, errno_ret));
  if (action == default_action) {
    return {};  // libseccomp refuses rules that repeat the default
  }
  TRY(std::vector<std::string> names, rule.optStrings("names"));
  TRY(std::string name, rule.optStr("name"));
  if (!name.empty()) {
    names.push_back(name);
  }
  std::vector<scmp_arg_cmp> args;
  std::set<unsigned> indexes;
  TRY(std::optional<Cursor> arg_list, rule.optArray("args"));
  if (arg_list) {
    TRY_VOID(arg_list->each([&](const Cursor& a) -> Result<void> {
      TRY_VOID(a.expectObject());
      if (!a.has("index") || !a.has("op")) {
        return a.error("needs index and op");
      }
      TRY(Cursor op_field, a.field("op"));
      TRY(std::string op_name, op_field.asString());
      TRY(scmp_compare op, parseOp(c, op_field.path(), op_name));
      TRY(auto value, a.optUint64("value"));
      TRY(auto two, a.optUint64("valueTwo"));
      TRY(unsigned index, a.number<unsigned>("index"));
      if (index >= 6) {
        return a.errorAt("index", "a system call has 6 arguments (0 to 5)");
      }
      args.push_back(scmp_arg_cmp{
          .arg = index, .op = op, .datum_a = value.value_or(0), .datum_b = two.value_or(0)});
      indexes.insert(index);
      return {};
    }));
  }
  for (const std::string& n : names) {
    int nr = seccomp_syscall_resolve_name(n.c_str());
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
      return sysError(-rc, "seccomp_rule_add " + n, c.origin);
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

  TRY(rapidjson::Document doc, json::parse(text, "seccomp profile", c.origin));
  Cursor top(doc, "seccomp profile", c.origin);
  TRY_VOID(top.expectObject());
  TRY_VOID(top.onlyKeys({"defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls",
                         "comment", "flags"},
                        "unknown or unsupported field"));
  TRY(std::vector<std::string> flags, top.optStrings("flags"));
  if (!flags.empty()) {
    return top.errorAt("flags", "seccomp filter flags are not supported");
  }
  if (!top.has("defaultAction")) {
    return top.errorAt("defaultAction", "missing");
  }
  TRY(std::string default_name, top.str("defaultAction"));
  TRY(int default_errno, errnoRet(top, "defaultErrnoRet"));
  TRY(uint32_t default_action, parseAction(c, "defaultAction", default_name, default_errno));

  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(default_action),
                                                       seccomp_release);
  if (!ctx) {
    return makeError("seccomp_init", c.origin, "failed");
  }
  // Syscalls made through the x86 and x32 ABIs get the same rules when the
  // profile lists those architectures; any other ABI is killed (libseccomp's
  // bad-arch action), so it cannot be used to slip past the rules.
  TRY(std::vector<std::string> arch_names, top.optStrings("architectures"));
  TRY(std::optional<Cursor> arch_map, top.optArray("archMap"));
  if (arch_map) {
    TRY_VOID(arch_map->each([&](const Cursor& m) -> Result<void> {
      TRY(std::string arch, m.optStr("architecture"));
      TRY(std::vector<std::string> subs, m.optStrings("subArchitectures"));
      if (arch == "SCMP_ARCH_X86_64") {
        arch_names.insert(arch_names.end(), subs.begin(), subs.end());
      }
      return {};
    }));
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
  TRY(std::optional<Cursor> syscalls, top.optArray("syscalls"));
  if (syscalls) {
    TRY_VOID(syscalls->each([&](const Cursor& rule) -> Result<void> {
      return addRule(c, ctx.get(), rule, default_action);
    }));
  }
  TRY(auto prog, exportBpf(ctx.get()));
  return SeccompProgram{std::move(prog)};
}

}  // namespace kernelet::isolation
