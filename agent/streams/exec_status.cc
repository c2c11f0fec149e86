#include "agent/streams/exec_status.h"

namespace kernelet::agent::streams {

int remoteCommandVersion(const std::string& protocol) {
  if (protocol == "v5.channel.k8s.io") {
    return 5;
  }
  if (protocol == "v4.channel.k8s.io" || protocol == "v4.base64.channel.k8s.io") {
    return 4;
  }
  if (protocol == "v3.channel.k8s.io") {
    return 3;
  }
  if (protocol == "v2.channel.k8s.io") {
    return 2;
  }
  return 1;
}

namespace {

// The length of the UTF-8 sequence at `s[i]`, or 0 when it is not valid
// (Go's utf8.DecodeRuneInString: overlong forms, surrogates and code points
// past U+10FFFF are invalid).
size_t utf8Length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) {
    return cont(1) ? 2 : 0;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2) || (c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F)) {
      return 0;
    }
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3) || (c == 0xF0 && b(1) < 0x90) ||
        (c == 0xF4 && b(1) > 0x8F)) {
      return 0;
    }
    return 4;
  }
  return 0;
}

}  // namespace

std::string goJsonString(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\b') {
        out += "\\b";
      } else if (c == '\f') {
        out += "\\f";
      } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
      } else {
        out += static_cast<char>(c);
      }
      i++;
      continue;
    }
    size_t n = utf8Length(s, i);
    if (n == 0) {
      out += "\\ufffd";
      i++;
    } else if (n == 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[i + 2]) & 0xFE) == 0xA8) {
      // U+2028 and U+2029, which JavaScript takes for line ends.
      out += (static_cast<unsigned char>(s[i + 2]) == 0xA8) ? "\\u2028" : "\\u2029";
      i += 3;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  out += '"';
  return out;
}

namespace {

// containerd's text for a command that exited non-zero (Go's %v of a []string).
std::string exitText(const ExecOutcome& o) {
  std::string cmd;
  for (const auto& arg : o.command) {
    cmd += (cmd.empty() ? "" : " ") + arg;
  }
  return "error executing command [" + cmd + "], exit code " + std::to_string(o.exit_code);
}

std::string internalText(const ExecOutcome& o) {
  return (o.attach ? "error attaching to container: " : "error executing command in container: ") +
         o.error;
}

}  // namespace

std::string execStatusMessage(const ExecOutcome& o) {
  if (o.kind == ExecOutcome::Kind::kFailed) {
    return "Internal error occurred: " + internalText(o);
  }
  if (o.exit_code == 0) {
    return "";
  }
  return "command terminated with non-zero exit code: " + exitText(o);
}

std::string execStatusJson(const ExecOutcome& o) {
  std::string j = R"({"metadata":{},"status":)";
  if (o.kind == ExecOutcome::Kind::kExited && o.exit_code == 0) {
    return j + R"("Success"})";
  }
  j += R"("Failure","message":)" + goJsonString(execStatusMessage(o));
  if (o.kind == ExecOutcome::Kind::kFailed) {
    return j + R"(,"reason":"InternalError","details":{"causes":[{"message":)" +
           goJsonString(internalText(o)) + R"(}]},"code":500})";
  }
  return j +
         R"(,"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":")" +
         std::to_string(o.exit_code) + R"("}]}})";
}

std::string errorStreamBytes(int version, const ExecOutcome& o) {
  if (version >= 4) {
    return execStatusJson(o);
  }
  return execStatusMessage(o);
}

}  // namespace kernelet::agent::streams
