#pragma once
// The small JSON helpers every encoder and decoder of API objects needs,
// written once: parsing an API answer safely, writing a string field, reading
// a plain string field, and a value back to text.

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>

#include "sys/result.h"

namespace kernelet::apiclient {

// An API object or answer, parsed without recursion and refused when nested
// deeper than json::Limits' depth (no Kubernetes object comes near it): a
// hostile or broken server cannot overflow the stack, neither here nor in the
// recursive writers and copies that later walk the document. No size limit:
// the HTTP layer already holds the whole body. Errors read
// "decode `WHERE`: offset N: what".
Result<rapidjson::Document> parseApiJson(std::string_view text, const std::string& where);

// `"key": "value"` with any RapidJSON writer.
template <typename Writer>
void put(Writer& w, std::string_view key, std::string_view value) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

// The same, left out when `value` is empty (omitempty).
template <typename Writer>
void putIfSet(Writer& w, std::string_view key, std::string_view value) {
  if (!value.empty()) {
    put(w, key, value);
  }
}

// The string member `key` of an object; "" when `v` is no object or the member
// is absent or not a string.
std::string stringField(const rapidjson::Value& v, const char* key);

// A value as compact JSON text.
std::string serialize(const rapidjson::Value& v);

// {"status": ...} of an object, "{}" when it has none.
std::string statusOf(const rapidjson::Value& object);

}  // namespace kernelet::apiclient
