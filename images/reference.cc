#include "images/reference.h"

#include <regex>

#include "images/digest.h"

namespace kernelet::images {

namespace {

// The grammar of distribution/reference, piece by piece.
const std::regex& componentRe() {
  static const std::regex re("[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*");
  return re;
}
const std::regex& domainRe() {
  static const std::regex re(
      R"((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?)");
  return re;
}
const std::regex& tagRe() {
  static const std::regex re(R"([\w][\w.-]{0,127})");
  return re;
}

// distribution/reference's NameTotalLengthMax.
constexpr size_t kNameTotalLengthMax = 255;

std::unexpected<Error> bad(const std::string& text, const std::string& why) {
  return makeError("parse image reference", text, why);
}

}  // namespace

std::string Reference::str() const {
  std::string out = name();
  if (!tag.empty()) {
    out += ":" + tag;
  }
  if (!digest.empty()) {
    out += "@" + digest;
  }
  return out;
}

Result<Reference> parseReference(const std::string& text) {
  if (text.empty()) {
    return bad(text, "empty");
  }
  // A first bound before any regex runs: the longest name (as typed, "index."
  // more than normalized), ':' and tag, '@' and sha256 digest.
  if (text.size() > 6 + kNameTotalLengthMax + 1 + 128 + 1 + 71) {
    return bad(text, "too long");
  }
  Reference r;
  std::string rest = text;
  if (size_t at = rest.find('@'); at != std::string::npos) {
    r.digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (!validateDigest(r.digest)) {
      return bad(text, "invalid digest \"" + r.digest + "\"");
    }
  }
  // A tag is after the last ':' that comes after the last '/' (a port is before it).
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    r.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (!std::regex_match(r.tag, tagRe())) {
      return bad(text, "invalid tag \"" + r.tag + "\"");
    }
  }
  // The first component is a domain if it looks like one (a dot, a port, or localhost).
  size_t first = rest.find('/');
  std::string head = rest.substr(0, first);
  if (first != std::string::npos && (head.find('.') != std::string::npos ||
                                     head.find(':') != std::string::npos || head == "localhost")) {
    r.domain = head;
    rest = rest.substr(first + 1);
    if (!std::regex_match(r.domain, domainRe())) {
      return bad(text, "invalid registry host \"" + r.domain + "\"");
    }
  } else {
    r.domain = "docker.io";
  }
  if (r.domain == "index.docker.io") {
    r.domain = "docker.io";
  }
  if (rest.empty()) {
    return bad(text, "no repository name");
  }
  for (char c : rest) {
    if (c >= 'A' && c <= 'Z') {
      return bad(text, "repository name must be lowercase");
    }
  }
  size_t i = 0;
  while (i <= rest.size()) {
    size_t j = rest.find('/', i);
    std::string comp = rest.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (!std::regex_match(comp, componentRe())) {
      return bad(text, "invalid repository name component \"" + comp + "\"");
    }
    if (j == std::string::npos) {
      break;
    }
    i = j + 1;
  }
  if (r.domain == "docker.io" && rest.find('/') == std::string::npos) {
    rest = "library/" + rest;  // official images
  }
  r.repository = rest;
  // Docker limits the normalized name (domain/repository, as ParseNormalizedNamed
  // checks it after adding docker.io/library/), not the text as typed: a short
  // name that grows past the limit would print as a reference that does not parse.
  if (r.name().size() > kNameTotalLengthMax) {
    return bad(text, "repository name must not be more than " +
                         std::to_string(kNameTotalLengthMax) + " characters");
  }
  if (r.tag.empty() && r.digest.empty()) {
    r.tag = "latest";
  }
  return r;
}

}  // namespace kernelet::images
