#include "agent/logs/cri_lines.h"

#include "agent/logs/log_time.h"

namespace kernelet::agent::logs {

std::optional<CriLine> splitCriLine(std::string_view line) {
  size_t a = line.find(' ');
  // The shortest time is 2006-01-02T15:04:05Z.
  if (a == std::string_view::npos || a < 20) {
    return std::nullopt;
  }
  CriLine l;
  l.time = line.substr(0, a);
  std::string_view rest = line.substr(a + 1);
  if (rest.starts_with("stdout ")) {
    l.stderr_ = false;
  } else if (rest.starts_with("stderr ")) {
    l.stderr_ = true;
  } else {
    return std::nullopt;
  }
  rest.remove_prefix(7);
  size_t b = rest.find(' ');
  if (b == std::string_view::npos) {
    return std::nullopt;
  }
  // Tags are ':'-separated for what may come; the first says P(artial) or F(ull).
  std::string_view tag = rest.substr(0, b);
  l.partial = tag.substr(0, tag.find(':')) == "P";
  l.content = rest.substr(b + 1);
  return l;
}

CriDecoder::CriDecoder(const LogOptions& options)
    : timestamps_(options.timestamps), since_(options.since_nanos), stream_(options.stream) {}

void CriDecoder::decode(std::string_view line, std::string& out) {
  auto l = splitCriLine(line);
  if (!l) {
    return;
  }
  if ((stream_ == StreamFilter::kStdout && l->stderr_) ||
      (stream_ == StreamFilter::kStderr && !l->stderr_)) {
    return;
  }
  // A writer stamps each batch of lines with one time: parse it once.
  if (l->time != last_time_) {
    last_time_.assign(l->time);
    last_nanos_ = parseRfc3339(l->time);
  }
  const std::optional<int64_t>& t = last_nanos_;
  if (!t) {
    return;  // a time that is not one: malformed, as the kubelet skips it
  }
  if (since_ && *t < *since_) {
    return;
  }
  bool& continues = continues_[l->stderr_ ? 1 : 0];
  if (timestamps_ && !continues) {
    appendTimestamp(out, *t);
    out += ' ';
  }
  out.append(l->content);
  if (!l->partial) {
    out += '\n';
  }
  continues = l->partial;
}

std::string criLogMessages(std::string_view cri_log) {
  CriDecoder d{LogOptions{}};
  std::string out;
  while (!cri_log.empty()) {
    size_t nl = cri_log.find('\n');
    d.decode(cri_log.substr(0, nl), out);
    cri_log.remove_prefix(nl == std::string_view::npos ? cri_log.size() : nl + 1);
  }
  return out;
}

}  // namespace kernelet::agent::logs
