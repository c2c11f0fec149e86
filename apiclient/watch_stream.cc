#include "apiclient/watch_stream.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace kernelet::apiclient {

namespace {

std::string memberString(const rapidjson::Value& v, const char* key) {
  return v.IsObject() && v.HasMember(key) && v[key].IsString() ? v[key].GetString() : "";
}

}  // namespace

Result<void> WatchStream::feed(std::string_view piece) {
  while (!piece.empty()) {
    size_t nl = piece.find('\n');
    if (nl == std::string_view::npos) {
      pending_.append(piece);
      return {};
    }
    if (pending_.empty()) {
      TRY_VOID(decodeLine(piece.substr(0, nl)));
    } else {
      pending_.append(piece.substr(0, nl));
      std::string line = std::move(pending_);
      pending_.clear();
      TRY_VOID(decodeLine(line));
    }
    piece.remove_prefix(nl + 1);
  }
  return {};
}

Result<void> WatchStream::finish() {
  if (pending_.find_first_not_of(" \t\r") != std::string::npos) {
    return makeError("decode watch event", "event " + std::to_string(events_ + 1),
                     "the stream ended in the middle of an event");
  }
  pending_.clear();
  return {};
}

Result<void> WatchStream::decodeLine(std::string_view line) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
    return {};  // keep-alive blank lines
  }
  std::string where = "event " + std::to_string(events_ + 1);
  rapidjson::Document d;
  d.Parse(line.data(), line.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("object") || !d["object"].IsObject()) {
    return makeError("decode watch event", where, "not a {\"type\", \"object\"} JSON object");
  }
  static const std::pair<const char*, WatchEvent::Type> types[] = {
      {"ADDED", WatchEvent::Type::kAdded},
      {"MODIFIED", WatchEvent::Type::kModified},
      {"DELETED", WatchEvent::Type::kDeleted},
      {"BOOKMARK", WatchEvent::Type::kBookmark},
      {"ERROR", WatchEvent::Type::kError}};
  std::string type = memberString(d, "type");
  WatchEvent e{};
  bool known = false;
  for (const auto& [name, t] : types) {
    if (type == name) {
      e.type = t;
      known = true;
    }
  }
  if (!known) {
    return makeError("decode watch event", where, "unknown type \"" + type + "\"");
  }
  const rapidjson::Value& obj = d["object"];
  if (obj.HasMember("metadata") && obj["metadata"].IsObject()) {
    const auto& meta = obj["metadata"];
    e.resource_version = memberString(meta, "resourceVersion");
    if (meta.HasMember("annotations")) {
      e.initial_events_end =
          memberString(meta["annotations"], "k8s.io/initial-events-end") == "true";
    }
  }
  if (e.type == WatchEvent::Type::kError) {
    e.code = obj.HasMember("code") && obj["code"].IsInt() ? obj["code"].GetInt() : 0;
    e.reason = memberString(obj, "reason");
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  obj.Accept(w);
  e.object.assign(buf.GetString(), buf.GetSize());
  events_++;
  handler_(std::move(e));
  return {};
}

}  // namespace kernelet::apiclient
