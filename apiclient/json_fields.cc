#include "apiclient/json_fields.h"

#include <limits>

#include "sys/json.h"

namespace kernelet::apiclient {

Result<rapidjson::Document> parseApiJson(std::string_view text, const std::string& where) {
  return json::parse(text, "decode", where,
                     {.max_bytes = std::numeric_limits<size_t>::max(), .max_depth = 512});
}

std::string stringField(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) {
    return "";
  }
  auto it = v.FindMember(key);
  return it != v.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

std::string serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return {sb.GetString(), sb.GetSize()};
}

std::string statusOf(const rapidjson::Value& object) {
  if (object.IsObject() && object.HasMember("status")) {
    return "{\"status\":" + serialize(object["status"]) + "}";
  }
  return "{}";
}

}  // namespace kernelet::apiclient
