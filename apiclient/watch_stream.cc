#include "apiclient/watch_stream.h"

#include <rapidjson/document.h>

#include "sys/json.h"

namespace kernelet::apiclient {

namespace {

std::string memberString(const rapidjson::Value& v, const char* key) {
  return v.IsObject() && v.HasMember(key) && v[key].IsString() ? v[key].GetString() : "";
}

// The exact bytes of the top-level member `key`'s value (an object) in the
// event's text: what the server sent, unknown fields and all, without
// serializing the DOM again. Empty when not found.
std::string_view memberText(std::string_view line, std::string_view key) {
  int depth = 0;
  bool in_string = false;
  size_t key_start = 0;
  for (size_t i = 0; i < line.size(); i++) {
    char c = line[i];
    if (in_string) {
      if (c == '\\') {
        i++;
      } else if (c == '"') {
        in_string = false;
        // A top-level key (depth 1) followed by ':' and an object.
        if (depth == 1 && line.substr(key_start, i - key_start) == key) {
          size_t j = i + 1;
          while (j < line.size() && (line[j] == ' ' || line[j] == ':')) {
            j++;
          }
          if (j < line.size() && line[j] == '{') {
            int d = 0;
            bool s = false;
            for (size_t k = j; k < line.size(); k++) {
              char ch = line[k];
              if (s) {
                if (ch == '\\') {
                  k++;
                } else if (ch == '"') {
                  s = false;
                }
              } else if (ch == '"') {
                s = true;
              } else if (ch == '{' || ch == '[') {
                d++;
              } else if ((ch == '}' || ch == ']') && --d == 0) {
                return line.substr(j, k - j + 1);
              }
            }
            return {};
          }
        }
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      key_start = i + 1;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  return {};
}

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The same as memberText for the form every API server writes,
// {"type":"ADDED","object":{...}}, known to be that form by the parsed DOM
// (two members, "type" first): the object runs from after the first "object"
// key to the last '}' before the closing one. Two short scans from the ends
// instead of one through every byte.
std::string_view objectTextOfTypeFirstEvent(std::string_view line) {
  size_t key = line.find("\"object\"");
  if (key == std::string_view::npos) {
    return {};
  }
  size_t start = key + 8;
  while (start < line.size() && (isSpace(line[start]) || line[start] == ':')) {
    start++;
  }
  size_t end = line.size();
  while (end > start && isSpace(line[end - 1])) {
    end--;
  }
  if (end <= start || line[end - 1] != '}') {
    return {};
  }
  end--;  // the event's own closing brace
  while (end > start && isSpace(line[end - 1])) {
    end--;
  }
  if (line[start] != '{' || line[end - 1] != '}') {
    return {};
  }
  return line.substr(start, end - start);
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
  // Parsed in place in a reused buffer, into reused memory: one pass, few allocations.
  // RapidJSON's SSE2 string scan reads whole aligned 16-byte blocks, up to 15
  // bytes past the terminator: keep them inside the buffer's allocation.
  scratch_.reserve(line.size() + 16);
  scratch_.assign(line);
  pool_.Clear();
  rapidjson::Document d(&pool_);
  // Depth-limited: a deeply nested event is refused, not a stack overflow. A
  // failed parse leaves `d` null, which the check below refuses, so its error can go.
  (void)json::parseInsitu(d, scratch_.data(), "decode watch event", "event");
  std::string_view object_text;
  if (!d.HasParseError() && d.IsObject()) {
    bool type_first =
        d.MemberCount() == 2 && std::string_view(d.MemberBegin()->name.GetString()) == "type";
    object_text = type_first ? objectTextOfTypeFirstEvent(line) : memberText(line, "object");
  }
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("object") || !d["object"].IsObject() ||
      object_text.empty()) {
    return makeError("decode watch event", "event " + std::to_string(events_ + 1),
                     "not a {\"type\", \"object\"} JSON object");
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
    return makeError("decode watch event", "event " + std::to_string(events_ + 1),
                     "unknown type \"" + type + "\"");
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
  e.object.assign(object_text);
  e.parsed = &obj;
  events_++;
  handler_(std::move(e));
  return {};
}

}  // namespace kernelet::apiclient
