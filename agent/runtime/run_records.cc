#include "agent/runtime/run_records.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "sys/fileio.h"
#include "sys/json.h"

namespace kernelet::agent::runtime {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void str(Writer& w, const char* key, const std::string& v) {
  w.Key(key);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}

void strings(Writer& w, const char* key, const std::vector<std::string>& v) {
  w.Key(key);
  w.StartArray();
  for (const auto& s : v) {
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  }
  w.EndArray();
}

void writeRun(Writer& w, const RunRecord& r) {
  w.StartObject();
  str(w, "id", r.id);
  w.Key("pid");
  w.Int(r.pid);
  w.Key("startTime");
  w.Uint64(r.start_time);
  str(w, "startedAt", r.started_at);
  w.Key("restartCount");
  w.Int(r.restart_count);
  str(w, "imageName", r.image_name);
  str(w, "imageId", r.image_id);
  w.Key("stopSignal");
  w.Int(r.stop_signal);
  if (r.user) {
    w.Key("user");
    w.StartObject();
    w.Key("uid");
    w.Int64(r.user->uid);
    w.Key("gid");
    w.Int64(r.user->gid);
    w.Key("groups");
    w.StartArray();
    for (int64_t g : r.user->groups) {
      w.Int64(g);
    }
    w.EndArray();
    w.EndObject();
  }
  str(w, "logPath", r.log_path);
  str(w, "rootfsDir", r.rootfs_dir);
  str(w, "cgroup", r.cgroup);
  if (r.stdin || r.stdin_once || r.tty) {
    // Only then: a record of a plain run reads as it always did.
    w.Key("stdio");
    w.StartObject();
    for (auto [key, v] : {std::pair{"stdin", r.stdin}, std::pair{"stdinOnce", r.stdin_once},
                          std::pair{"tty", r.tty}, std::pair{"stdinClosed", r.stdin_closed}}) {
      w.Key(key);
      w.Bool(v);
    }
    w.EndObject();
  }
  if (!r.termination_file.empty()) {
    // Only then, as stdio: a record without one reads as it always did.
    w.Key("terminationLog");
    w.StartObject();
    str(w, "path", r.termination_file);
    w.Key("fallbackToLogs");
    w.Bool(r.fallback_to_logs);
    w.EndObject();
  }
  if (r.ended) {
    w.Key("end");
    w.StartObject();
    w.Key("exitCode");
    w.Int(r.exit_code);
    str(w, "reason", r.reason);
    str(w, "message", r.message);
    str(w, "finishedAt", r.finished_at);
    w.Key("oomKilled");
    w.Bool(r.oom_killed);
    w.EndObject();
  }
  w.EndObject();
}

// The record's ids and names become paths: no separator, no dot-dot.
Result<void> plainName(const json::Cursor& c, const std::string& v, const char* key) {
  if (v.empty() || v.size() > 253 || v == "." || v == ".." ||
      v.find_first_of(std::string_view("/\0", 2)) != std::string::npos) {
    return c.errorAt(key, "not a plain name");
  }
  return {};
}

Result<void> absolutePath(const json::Cursor& c, const std::string& v, const char* key,
                          bool may_be_empty) {
  if (v.empty() && may_be_empty) {
    return {};
  }
  if (!v.starts_with("/") || v.find("/../") != std::string::npos || v.ends_with("/..") ||
      v.find('\0') != std::string::npos) {
    return c.errorAt(key, "not an absolute path");
  }
  return {};
}

Result<RunRecord> readRun(const json::Cursor& c) {
  TRY_VOID(c.onlyKeys({"id", "pid", "startTime", "startedAt", "restartCount", "imageName",
                       "imageId", "stopSignal", "user", "logPath", "rootfsDir", "cgroup", "stdio",
                       "terminationLog", "end"}));
  RunRecord r;
  TRY(r.id, c.str("id"));
  if (r.id.size() != 64 || !std::all_of(r.id.begin(), r.id.end(), [](char ch) {
        return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
      })) {
    return c.errorAt("id", "not a container id");
  }
  TRY(r.pid, c.number<int>("pid"));
  if (r.pid <= 0) {
    return c.errorAt("pid", "must be positive");
  }
  TRY(r.start_time, c.uint64("startTime"));
  TRY(r.started_at, c.str("startedAt"));
  TRY(r.restart_count, c.number<int>("restartCount"));
  if (r.restart_count < 0) {
    return c.errorAt("restartCount", "must not be negative");
  }
  TRY(r.image_name, c.str("imageName"));
  TRY(r.image_id, c.optStr("imageId"));
  TRY(r.stop_signal, c.number<int>("stopSignal"));
  if (r.stop_signal <= 0 || r.stop_signal > 64) {
    return c.errorAt("stopSignal", "not a signal");
  }
  TRY(std::optional<json::Cursor> user, c.optObject("user"));
  if (user) {
    TRY_VOID(user->onlyKeys({"uid", "gid", "groups"}));
    ProcessUser u;
    TRY(u.uid, user->number<uint32_t>("uid"));
    TRY(u.gid, user->number<uint32_t>("gid"));
    TRY(std::optional<json::Cursor> groups, user->optArray("groups"));
    if (groups) {
      TRY_VOID(groups->each([&u](const json::Cursor& g) -> Result<void> {
        TRY(uint32_t gid, g.asNumber<uint32_t>());
        u.groups.push_back(gid);
        return {};
      }));
    }
    r.user = std::move(u);
  }
  TRY(r.log_path, c.str("logPath"));
  TRY_VOID(absolutePath(c, r.log_path, "logPath", false));
  TRY(r.rootfs_dir, c.str("rootfsDir"));
  TRY_VOID(absolutePath(c, r.rootfs_dir, "rootfsDir", false));
  TRY(r.cgroup, c.str("cgroup"));
  TRY_VOID(absolutePath(c, r.cgroup, "cgroup", false));
  TRY(std::optional<json::Cursor> stdio, c.optObject("stdio"));
  if (stdio) {
    TRY_VOID(stdio->onlyKeys({"stdin", "stdinOnce", "tty", "stdinClosed"}));
    TRY(r.stdin, stdio->optBool("stdin"));
    TRY(r.stdin_once, stdio->optBool("stdinOnce"));
    TRY(r.tty, stdio->optBool("tty"));
    TRY(r.stdin_closed, stdio->optBool("stdinClosed"));
  }
  TRY(std::optional<json::Cursor> term, c.optObject("terminationLog"));
  if (term) {
    TRY_VOID(term->onlyKeys({"path", "fallbackToLogs"}));
    TRY(r.termination_file, term->str("path"));
    TRY_VOID(absolutePath(*term, r.termination_file, "path", false));
    TRY(r.fallback_to_logs, term->optBool("fallbackToLogs"));
  }
  TRY(std::optional<json::Cursor> end, c.optObject("end"));
  if (end) {
    TRY_VOID(end->onlyKeys({"exitCode", "reason", "message", "finishedAt", "oomKilled"}));
    r.ended = true;
    TRY(r.exit_code, end->number<int>("exitCode"));
    TRY(r.reason, end->str("reason"));
    TRY(r.message, end->optStr("message"));
    TRY(r.finished_at, end->str("finishedAt"));
    TRY(r.oom_killed, end->optBool("oomKilled"));
  }
  return r;
}

Result<QosClass> readQos(const json::Cursor& c) {
  TRY(std::string name, c.str("qos"));
  for (QosClass q : {QosClass::kGuaranteed, QosClass::kBurstable, QosClass::kBestEffort}) {
    if (name == qosName(q)) {
      return q;
    }
  }
  return c.errorAt("qos", "unknown QoS class \"" + name + "\"");
}

Result<void> readSandbox(const json::Cursor& root, PodRecord& r) {
  TRY(r.cgroup, root.str("cgroup"));
  TRY_VOID(absolutePath(root, r.cgroup, "cgroup", false));
  TRY(r.netns_path, root.optStr("netns"));
  TRY_VOID(absolutePath(root, r.netns_path, "netns", true));
  TRY(r.ip, root.optStr("ip"));
  TRY(r.run_dir, root.str("runDir"));
  TRY_VOID(absolutePath(root, r.run_dir, "runDir", false));
  TRY(r.hostname, root.str("hostname"));
  return {};
}

Result<void> readVolumes(const json::Cursor& root, PodRecord& r) {
  TRY(json::Cursor v, root.object("volumes"));
  TRY_VOID(v.onlyKeys({"dir", "paths", "tmpfs", "projected"}));
  TRY(r.volumes_dir, v.optStr("dir"));
  TRY_VOID(absolutePath(v, r.volumes_dir, "dir", true));
  TRY(r.volume_paths, v.optStringMap("paths"));
  TRY(r.tmpfs, v.optStrings("tmpfs"));
  TRY(r.projected, v.optStrings("projected"));
  return {};
}

}  // namespace

std::string toJson(const PodRecord& r) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("version");
  w.Int(r.version);
  str(w, "bootId", r.boot_id);
  str(w, "uid", r.uid);
  str(w, "namespace", r.namespace_);
  str(w, "name", r.name);
  str(w, "podHash", r.pod_hash);
  str(w, "qos", qosName(r.qos));
  w.Key("graceSeconds");
  w.Int64(r.grace_seconds);
  if (r.kill_at_unix_ms) {
    w.Key("killAtUnixMs");
    w.Int64(*r.kill_at_unix_ms);
  }
  str(w, "cgroup", r.cgroup);
  str(w, "netns", r.netns_path);
  str(w, "ip", r.ip);
  str(w, "runDir", r.run_dir);
  str(w, "hostname", r.hostname);
  w.Key("volumes");
  w.StartObject();
  str(w, "dir", r.volumes_dir);
  w.Key("paths");
  w.StartObject();
  for (const auto& [name, path] : r.volume_paths) {
    str(w, name.c_str(), path);
  }
  w.EndObject();
  strings(w, "tmpfs", r.tmpfs);
  strings(w, "projected", r.projected);
  w.EndObject();
  w.Key("containers");
  w.StartObject();
  for (const auto& [name, c] : r.containers) {
    w.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
    w.StartObject();
    if (c.latest) {
      w.Key("latest");
      writeRun(w, *c.latest);
    }
    if (c.previous) {
      w.Key("previous");
      writeRun(w, *c.previous);
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<PodRecord> parsePodRecord(std::string_view text, const std::string& path) {
  // Small and shallow by construction: anything bigger or deeper is not ours.
  TRY(rapidjson::Document doc,
      json::parse(text, "read pod record", path, {.max_bytes = 4u << 20, .max_depth = 8}));
  json::Cursor root(doc, "read pod record", path);
  PodRecord r;
  // The version first: a future record may have fields this build does not know.
  TRY(r.version, root.number<int>("version"));
  if (r.version != PodRecord::kVersion) {
    return root.errorAt("version", "version " + std::to_string(r.version) +
                                       " is not this build's (" +
                                       std::to_string(PodRecord::kVersion) + ")");
  }
  TRY_VOID(root.onlyKeys({"version", "bootId", "uid", "namespace", "name", "podHash", "qos",
                          "graceSeconds", "killAtUnixMs", "cgroup", "netns", "ip", "runDir",
                          "hostname", "volumes", "containers"}));
  TRY(r.boot_id, root.str("bootId"));
  TRY(r.uid, root.str("uid"));
  TRY_VOID(plainName(root, r.uid, "uid"));
  TRY(r.namespace_, root.str("namespace"));
  TRY(r.name, root.str("name"));
  TRY(r.pod_hash, root.optStr("podHash"));
  TRY(r.qos, readQos(root));
  TRY(r.grace_seconds, root.int64("graceSeconds"));
  if (r.grace_seconds < 0) {
    return root.errorAt("graceSeconds", "must not be negative");
  }
  TRY(r.kill_at_unix_ms, root.optInt64("killAtUnixMs"));
  TRY_VOID(readSandbox(root, r));
  TRY_VOID(readVolumes(root, r));
  TRY(json::Cursor containers, root.object("containers"));
  TRY_VOID(containers.members([&](const std::string& name, const json::Cursor& c) -> Result<void> {
    TRY_VOID(plainName(containers, name, name.c_str()));
    TRY_VOID(c.onlyKeys({"latest", "previous"}));
    ContainerRecord& rec = r.containers[name];
    TRY(std::optional<json::Cursor> latest, c.optObject("latest"));
    if (latest) {
      TRY(rec.latest, readRun(*latest));
    }
    TRY(std::optional<json::Cursor> previous, c.optObject("previous"));
    if (previous) {
      TRY(rec.previous, readRun(*previous));
    }
    return {};
  }));
  return r;
}

std::string recordPath(const std::string& root_dir, const std::string& uid) {
  return root_dir + "/pods/" + uid + "/runtime.json";
}

Result<void> writePodRecord(const std::string& path, const PodRecord& r) {
  // No fsync: after a power loss nothing the record describes is left.
  return writeFileAtomic(path, toJson(r), 0600, Sync::kNone);
}

Result<PodRecord> readPodRecord(const std::string& path) {
  TRY(std::string text, readFile(path));
  return parsePodRecord(text, path);
}

Result<PodRecord> readCurrentRecord(const std::string& path, const std::string& boot_id) {
  TRY(PodRecord r, readPodRecord(path));
  if (boot_id.empty() || r.boot_id != boot_id) {
    return makeError("read pod record", path, "written in another boot");
  }
  return r;
}

std::string currentBootId() {
  auto id = readFile("/proc/sys/kernel/random/boot_id");
  if (!id) {
    return {};
  }
  std::string s = *id;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

}  // namespace kernelet::agent::runtime
