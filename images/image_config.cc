#include "images/image_config.h"

#include <rapidjson/document.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace kernelet::images {

namespace {

using rapidjson::Value;

std::vector<std::string> strings(const Value& obj, const char* key) {
  std::vector<std::string> out;
  if (obj.HasMember(key) && obj[key].IsArray()) {
    for (const auto& v : obj[key].GetArray()) {
      if (v.IsString()) {
        out.emplace_back(v.GetString());
      }
    }
  }
  return out;
}

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
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  if (d.HasParseError() || !d.IsObject()) {
    return makeError("parse image config", where, "not a JSON object");
  }
  ImageConfig c;
  if (!d.HasMember("config") || !d["config"].IsObject()) {
    return c;  // a config without "config" runs nothing by default
  }
  const Value& cfg = d["config"];
  c.entrypoint = strings(cfg, "Entrypoint");
  c.cmd = strings(cfg, "Cmd");
  c.env = strings(cfg, "Env");
  auto str = [&](const char* k) {
    return cfg.HasMember(k) && cfg[k].IsString() ? std::string(cfg[k].GetString()) : std::string();
  };
  c.working_dir = str("WorkingDir");
  c.user = str("User");
  c.stop_signal = str("StopSignal");
  if (cfg.HasMember("ExposedPorts") && cfg["ExposedPorts"].IsObject()) {
    for (auto m = cfg["ExposedPorts"].MemberBegin(); m != cfg["ExposedPorts"].MemberEnd(); ++m) {
      c.exposed_ports.emplace_back(m->name.GetString());
    }
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
