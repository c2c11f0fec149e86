#include "agent/streams/terminal_size.h"

#include <strings.h>

#include <optional>

#include "sys/json.h"

namespace kernelet::agent::streams {

namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The length of the JSON object `text` starts with (after no whitespace), or
// nullopt while it is incomplete. Strings are skipped whole, so a brace inside
// one does not count.
std::optional<size_t> objectEnd(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) {
        return i + 1;
      }
    }
  }
  return std::nullopt;
}

// Go's encoding/json matches keys case-insensitively: {"width":80} is a Width.
Result<TerminalSize> decodeSize(std::string_view text) {
  TRY(auto doc, json::parse(text, "decode", "resize stream", json::Limits{.max_depth = 16}));
  json::Cursor root(doc, "decode", "resize stream");
  TRY_VOID(root.expectObject());
  TerminalSize size;
  TRY_VOID(root.members([&](const std::string& name, const json::Cursor& v) -> Result<void> {
    uint16_t* field = nullptr;
    if (strcasecmp(name.c_str(), "Width") == 0) {
      field = &size.width;
    } else if (strcasecmp(name.c_str(), "Height") == 0) {
      field = &size.height;
    }
    if (field == nullptr || v.isNull()) {
      return {};  // unknown members are skipped, null leaves the field, as Go
    }
    TRY(*field, v.asNumber<uint16_t>());
    return {};
  }));
  return size;
}

}  // namespace

Result<std::vector<TerminalSize>> ResizeDecoder::feed(std::string_view bytes) {
  if (failed_) {
    return makeError("decode", "resize stream", error_);
  }
  pending_.append(bytes);
  std::vector<TerminalSize> sizes;
  size_t pos = 0;
  auto fail = [&](std::string what) -> Result<std::vector<TerminalSize>> {
    failed_ = true;
    error_ = std::move(what);
    pending_.clear();
    return makeError("decode", "resize stream", error_);
  };
  while (true) {
    while (pos < pending_.size() && isSpace(pending_[pos])) {
      pos++;
    }
    if (pos == pending_.size()) {
      break;
    }
    if (pending_[pos] != '{') {
      return fail("expected a JSON object {\"Width\":W,\"Height\":H}");
    }
    std::optional<size_t> len = objectEnd(std::string_view(pending_).substr(pos));
    if (!len) {
      break;
    }
    auto size = decodeSize(std::string_view(pending_).substr(pos, *len));
    if (!size) {
      return fail(size.error().message());
    }
    sizes.push_back(*size);
    pos += *len;
  }
  pending_.erase(0, pos);
  if (pending_.size() > kMaxPending) {
    return fail("a message longer than " + std::to_string(kMaxPending) + " bytes");
  }
  return sizes;
}

}  // namespace kernelet::agent::streams
