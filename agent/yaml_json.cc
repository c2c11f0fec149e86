#include "agent/yaml_json.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <yaml-cpp/yaml.h>

#include <regex>

namespace kernelet::agent {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void scalar(Writer& w, const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") {  // quoted: a string whatever it looks like
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
    return;
  }
  static const std::regex integer("[-+]?[0-9]+");
  static const std::regex real("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (s == "true" || s == "True" || s == "TRUE") {
    w.Bool(true);
  } else if (s == "false" || s == "False" || s == "FALSE") {
    w.Bool(false);
  } else if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    w.Null();
  } else if (std::regex_match(s, integer)) {
    w.Int64(std::stoll(s));
  } else if (std::regex_match(s, real)) {
    w.Double(std::stod(s));
  } else {
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  }
}

void node(Writer& w, const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      w.StartObject();
      for (const auto& kv : n) {
        std::string k = kv.first.as<std::string>();
        w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
        node(w, kv.second);
      }
      w.EndObject();
      break;
    case YAML::NodeType::Sequence:
      w.StartArray();
      for (const auto& v : n) {
        node(w, v);
      }
      w.EndArray();
      break;
    case YAML::NodeType::Scalar:
      scalar(w, n);
      break;
    default:
      w.Null();
  }
}

}  // namespace

std::string yamlNodeToJson(const YAML::Node& n) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  node(w, n);
  return {sb.GetString(), sb.GetSize()};
}

}  // namespace kernelet::agent
