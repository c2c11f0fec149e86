#include "agent/model/yaml_json.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace kernelet::agent {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Hand-written rather than std::regex: libstdc++'s regex recurses once per
// character, so a 300,000-digit scalar overflowed the stack and killed the agent.
size_t digitsAt(const std::string& s, size_t i) {
  size_t start = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    i++;
  }
  return i - start;
}

// YAML 1.2 core schema: [-+]?[0-9]+
bool isInteger(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  size_t n = digitsAt(s, i);
  return n > 0 && i + n == s.size();
}

// YAML 1.2 core schema: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool isReal(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  size_t whole = digitsAt(s, i);
  i += whole;
  size_t fraction = 0;
  if (i < s.size() && s[i] == '.') {
    fraction = digitsAt(s, ++i);
    i += fraction;
  }
  if (whole == 0 && fraction == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
      i++;
    }
    size_t exp = digitsAt(s, i);
    if (exp == 0) {
      return false;
    }
    i += exp;
  }
  return i == s.size();
}

void string(Writer& w, const std::string& s) {
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
}

// Where the Pod schema says a scalar is a string whatever it looks like: the
// decoder reads these as strings, so the mirror pod must say the same (an
// unquoted `version: 2` annotation is "2", not a number the API refuses).
bool stringField(const std::vector<std::string>& path) {
  auto is = [&](std::initializer_list<const char*> want) {
    if (path.size() != want.size()) {
      return false;
    }
    size_t i = 0;
    for (const char* w : want) {
      if (std::string(w) != "*" && path[i] != w) {
        return false;
      }
      i++;
    }
    return true;
  };
  for (const char* meta : {"name", "namespace", "uid", "generateName"}) {
    if (is({"metadata", meta})) {
      return true;
    }
  }
  if (is({"metadata", "labels", "*"}) || is({"metadata", "annotations", "*"})) {
    return true;
  }
  for (const char* spec :
       {"hostname", "subdomain", "nodeName", "serviceAccountName", "restartPolicy", "dnsPolicy"}) {
    if (is({"spec", spec})) {
      return true;
    }
  }
  if (path.size() >= 4 && path[0] == "spec" &&
      (path[1] == "containers" || path[1] == "initContainers")) {
    for (const char* field : {"name", "image", "workingDir", "imagePullPolicy"}) {
      if (is({"spec", "*", "*", field})) {
        return true;
      }
    }
    return is({"spec", "*", "*", "command", "*"}) || is({"spec", "*", "*", "args", "*"}) ||
           is({"spec", "*", "*", "env", "*", "name"}) ||
           is({"spec", "*", "*", "env", "*", "value"});
  }
  return false;
}

void scalar(Writer& w, const YAML::Node& n, const std::vector<std::string>& path) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!" || stringField(path)) {  // quoted, or a string in the schema
    string(w, s);
    return;
  }
  if (s == "true" || s == "True" || s == "TRUE") {
    w.Bool(true);
  } else if (s == "false" || s == "False" || s == "FALSE") {
    w.Bool(false);
  } else if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    w.Null();
  } else if (isInteger(s)) {
    // A number JSON (and the API's int64 fields) cannot hold stays its text:
    // the API server names the field if it wanted a number there.
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE) {
      string(w, s);
    } else {
      w.Int64(v);
    }
  } else if (isReal(s)) {
    errno = 0;
    double v = std::strtod(s.c_str(), nullptr);
    if (errno == ERANGE || !std::isfinite(v)) {
      string(w, s);
    } else {
      w.Double(v);
    }
  } else {
    string(w, s);
  }
}

void node(Writer& w, const YAML::Node& n, std::vector<std::string>& path) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      w.StartObject();
      for (const auto& kv : n) {
        std::string k = kv.first.as<std::string>();
        w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
        path.push_back(std::move(k));
        node(w, kv.second, path);
        path.pop_back();
      }
      w.EndObject();
      break;
    case YAML::NodeType::Sequence:
      w.StartArray();
      for (const auto& v : n) {
        path.emplace_back("*");
        node(w, v, path);
        path.pop_back();
      }
      w.EndArray();
      break;
    case YAML::NodeType::Scalar:
      scalar(w, n, path);
      break;
    default:
      w.Null();
  }
}

}  // namespace

std::string yamlNodeToJson(const YAML::Node& n) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  std::vector<std::string> path;
  node(w, n, path);
  return {sb.GetString(), sb.GetSize()};
}

}  // namespace kernelet::agent
