#include "isolation/oci_state.h"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "sys/fileio.h"

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

Result<OciState> loadState(const std::string& dir) {
  TRY(std::string text, readFile(dir + "/state.json"));
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("id") || !d.HasMember("pid")) {
    return makeError("read state", dir + "/state.json", "corrupt");
  }
  auto str = [&](const char* k) {
    return d.HasMember(k) && d[k].IsString() ? std::string(d[k].GetString()) : std::string();
  };
  OciState s;
  s.oci_version = str("ociVersion");
  s.id = str("id");
  s.bundle = str("bundle");
  s.rootfs = str("rootfs");
  s.created = str("created");
  s.cgroup = str("cgroup");
  s.pid = d["pid"].GetInt();
  s.start_time = d.HasMember("startTime") ? d["startTime"].GetUint64() : 0;
  if (d.HasMember("annotations") && d["annotations"].IsObject()) {
    for (auto m = d["annotations"].MemberBegin(); m != d["annotations"].MemberEnd(); ++m) {
      s.annotations[m->name.GetString()] = m->value.GetString();
    }
  }
  return s;
}

}  // namespace kernelet::isolation
