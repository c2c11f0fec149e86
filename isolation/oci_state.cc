#include "isolation/oci_state.h"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "sys/fileio.h"
#include "sys/json.h"

namespace kernelet::isolation {

uint64_t processStartTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) {
    return 0;
  }
  // comm may hold spaces and parentheses: fields are counted after the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  char state = 0;
  rest >> state;
  if (state == 'Z' || state == 'X') {
    return 0;  // exited, not yet reaped by whoever adopted it
  }
  for (int i = 4; i < 22 && rest >> field; i++) {
  }
  uint64_t start = 0;
  rest >> start;
  return start;
}

std::string OciState::status(const std::string& dir) const {
  if (pid <= 0 || processStartTime(pid) != start_time) {
    return "stopped";
  }
  return ::access((dir + "/exec.fifo").c_str(), F_OK) == 0 ? "created" : "running";
}

namespace {

template <typename W>
void writeCommon(W& w, const OciState& s, const std::string& status) {
  w.Key("ociVersion");
  w.String(s.oci_version.c_str());
  w.Key("id");
  w.String(s.id.c_str());
  w.Key("pid");
  w.Int(status == "stopped" ? 0 : s.pid);
  w.Key("status");
  w.String(status.c_str());
  w.Key("bundle");
  w.String(s.bundle.c_str());
  w.Key("rootfs");
  w.String(s.rootfs.c_str());
  w.Key("created");
  w.String(s.created.c_str());
  w.Key("annotations");
  w.StartObject();
  for (const auto& [k, v] : s.annotations) {
    w.Key(k.c_str());
    w.String(v.c_str());
  }
  w.EndObject();
}

}  // namespace

std::string OciState::toJson(const std::string& dir) const {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  w.StartObject();
  writeCommon(w, *this, status(dir));
  w.EndObject();
  return std::string(buf.GetString()) + "\n";
}

Result<void> saveState(const std::string& dir, const OciState& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  writeCommon(w, s, "running");
  w.Key("startTime");
  w.Uint64(s.start_time);
  w.Key("cgroup");
  w.String(s.cgroup.c_str());
  w.EndObject();
  return writeFileAtomic(dir + "/state.json", buf.GetString(), 0600);
}

Result<OciState> parseState(const std::string& json, const std::string& where) {
  TRY(rapidjson::Document d, json::parse(json, "read state", where));
  json::Cursor top(d, "read state", where);
  OciState s;
  TRY(s.id, top.str("id"));
  // The pid is signalled later: a state file must not point anywhere but a process.
  TRY(s.pid, top.number<pid_t>("pid"));
  if (s.pid < 0) {
    return top.error("pid: must not be negative");
  }
  TRY(s.oci_version, top.optStr("ociVersion"));
  TRY(s.bundle, top.optStr("bundle"));
  TRY(s.rootfs, top.optStr("rootfs"));
  TRY(s.created, top.optStr("created"));
  TRY(s.cgroup, top.optStr("cgroup"));
  TRY(auto start_time, top.optUint64("startTime"));
  s.start_time = start_time.value_or(0);
  TRY(s.annotations, top.optStringMap("annotations"));
  return s;
}

Result<OciState> loadState(const std::string& dir) {
  TRY(std::string text, readFile(dir + "/state.json"));
  return parseState(text, dir + "/state.json");
}

}  // namespace kernelet::isolation
