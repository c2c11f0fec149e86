#include "images/image_config.h"

#include <charconv>
#include <fstream>
#include <sstream>

#include "sys/json.h"

namespace kernelet::images {

namespace {

std::optional<uint32_t> number(const std::string& s) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return std::nullopt;
  }
  return v;
}

// The lines of ROOTFS/etc/FILE split at ':'.
std::vector<std::vector<std::string>> colonFile(const std::string& path) {
  std::vector<std::vector<std::string>> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::vector<std::string> fields;
    std::istringstream ls(line);
    for (std::string f; std::getline(ls, f, ':');) {
      fields.push_back(f);
    }
    out.push_back(std::move(fields));
  }
  return out;
}

}  // namespace

Result<ImageConfig> parseImageConfig(const std::string& json, const std::string& where) {
  TRY(rapidjson::Document d, json::parse(json, "parse image config", where));
  json::Cursor top(d, "parse image config", where);
  TRY_VOID(top.expectObject());
  ImageConfig c;
  TRY(std::optional<json::Cursor> cfg, top.optObject("config"));
  if (!cfg) {
    return c;  // a config without "config" runs nothing by default
  }
  TRY(c.entrypoint, cfg->optStrings("Entrypoint"));
  TRY(c.cmd, cfg->optStrings("Cmd"));
  TRY(c.env, cfg->optStrings("Env"));
  TRY(c.working_dir, cfg->optStr("WorkingDir"));
  TRY(c.user, cfg->optStr("User"));
  TRY(c.stop_signal, cfg->optStr("StopSignal"));
  TRY(std::optional<json::Cursor> ports, cfg->optObject("ExposedPorts"));
  if (ports) {
    TRY_VOID(ports->members([&](const std::string& port, const json::Cursor&) -> Result<void> {
      c.exposed_ports.push_back(port);
      return {};
    }));
  }
  return c;
}

Result<std::vector<std::string>> containerArgv(const ImageConfig& image,
                                               const std::vector<std::string>& command,
                                               const std::vector<std::string>& args,
                                               const std::string& container) {
  std::vector<std::string> argv;
  if (!command.empty()) {
    argv = command;
    argv.insert(argv.end(), args.begin(), args.end());
  } else {
    argv = image.entrypoint;
    const auto& rest = args.empty() ? image.cmd : args;
    argv.insert(argv.end(), rest.begin(), rest.end());
  }
  if (argv.empty()) {
    return makeError("container", container,
                     "no command: neither the pod nor the image's Entrypoint/Cmd gives one");
  }
  return argv;
}

Result<ResolvedUser> resolveUser(const std::string& rootfs, const std::string& user) {
  ResolvedUser r{.home = "/"};
  std::string name = user.substr(0, user.find(':'));
  std::string group = user.find(':') == std::string::npos ? "" : user.substr(user.find(':') + 1);
  auto passwd = colonFile(rootfs + "/etc/passwd");
  auto groups = colonFile(rootfs + "/etc/group");
  std::string user_name;
  bool found = false;
  if (name.empty()) {
    name = "0";
  }
  for (const auto& p : passwd) {
    if (p.size() >= 6 && (p[0] == name || (number(name) && p[2] == name))) {
      r.uid = number(p[2]).value_or(0);
      r.gid = number(p[3]).value_or(0);
      r.home = p[5];
      user_name = p[0];
      found = true;
      break;
    }
  }
  if (!found) {
    auto uid = number(name);
    if (!uid) {
      return makeError("resolve user", user, "no such user in " + rootfs + "/etc/passwd");
    }
    r.uid = *uid;
  }
  if (!group.empty()) {
    if (auto gid = number(group)) {
      r.gid = *gid;
    } else {
      bool g = false;
      for (const auto& e : groups) {
        if (e.size() >= 3 && e[0] == group) {
          r.gid = number(e[2]).value_or(0);
          g = true;
        }
      }
      if (!g) {
        return makeError("resolve user", user, "no such group in " + rootfs + "/etc/group");
      }
    }
  }
  r.additional_gids.push_back(r.gid);
  // Supplementary groups: those of /etc/group that list the user (by name).
  if (!user_name.empty() && group.empty()) {
    for (const auto& e : groups) {
      if (e.size() < 4) {
        continue;
      }
      std::istringstream members(e[3]);
      for (std::string m; std::getline(members, m, ',');) {
        auto gid = number(e[2]);
        if (m == user_name && gid && *gid != r.gid) {
          r.additional_gids.push_back(*gid);
        }
      }
    }
  }
  return r;
}

}  // namespace kernelet::images
