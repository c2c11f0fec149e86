#pragma once
// Checked reading of JSON that comes from outside (images, registries, bundles,
// seccomp profiles, state files): a wrong type is an error naming the document
// and the JSON path, never a crash. RapidJSON's own accessors (GetString,
// GetArray, operator[]) assert on a wrong type, which release builds compile
// out: they then read garbage and crash. So outside input is read only through
// a Cursor, which checks every type before it touches a value.
//
//   TRY(auto doc, json::parse(text, "decode", path));
//   json::Cursor root(doc, "decode", path);
//   TRY(json::Cursor manifests, root.array("manifests"));
//   TRY_VOID(manifests.each([&](const json::Cursor& m) -> Result<void> {
//     TRY(std::string digest, m.str("digest"));  // decode `p`: manifests[0].digest: ...
//     ...
//   }));
//
// Absent and null are the same for the opt* accessors, as Go's encoding/json
// (which wrote most of these documents) treats them.

#include <rapidjson/document.h>

#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sys/result.h"

namespace kernelet::json {

struct Limits {
  // Larger documents are refused before parsing: no image, bundle or profile
  // needs more, and it bounds the memory a hostile peer can make us spend.
  size_t max_bytes = 64u << 20;
  // Deeper nesting is refused while parsing. parse() is iterative
  // (kParseIterativeFlag), but writers and copies of a value recurse.
  unsigned max_depth = 512;
};

// Parses one JSON value (any kind: the cursor checks it). Errors read
// "OP `NAME`: offset N: what". Trailing text after the value is an error.
Result<rapidjson::Document> parse(std::string_view text, const std::string& op,
                                  const std::string& name, Limits limits = {});
// The same in place, for a hot path that reuses its buffers: `text` is
// NUL-terminated and overwritten, `doc` (with its own allocator, say a reused
// pool) refers into it afterwards. On an error `doc` is left as it was.
// max_bytes is not checked: the caller holds the text already. The parser is
// the faster recursive one, its depth bounded by max_depth.
Result<void> parseInsitu(rapidjson::Document& doc, char* text, const std::string& op,
                         const std::string& name, Limits limits = {});

// One value in a parsed document with where it is: the document's name and
// the path to it ("manifests[0].platform"). Cheap to copy; it refers to the
// document, which must outlive it.
class Cursor {
 public:
  Cursor(const rapidjson::Value& root, std::string op, std::string name);

  const rapidjson::Value& value() const { return *value_; }
  const std::string& path() const { return path_; }
  // "OP `NAME`: PATH: what" (without "PATH: " at the top).
  std::unexpected<Error> error(const std::string& what) const;
  // The same about this object's member `key`, present or not: "PATH.KEY: what".
  std::unexpected<Error> errorAt(const std::string& key, const std::string& what) const;

  bool isObject() const { return value_->IsObject(); }
  bool isArray() const { return value_->IsArray(); }
  bool isString() const { return value_->IsString(); }
  bool isNull() const { return value_->IsNull(); }
  // An object with `key` set to something other than null.
  bool has(const char* key) const;

  // This value as a type, or an error naming its path.
  Result<void> expectObject() const;
  Result<void> expectArray() const;
  Result<std::string> asString() const;
  Result<bool> asBool() const;
  template <std::integral T>
  Result<T> asNumber() const;

  // A member: required ones fail when absent or null, opt ones give empty.
  // Both fail when this value is not an object.
  Result<Cursor> field(const char* key) const;  // any type
  Result<std::optional<Cursor>> opt(const char* key) const;
  Result<Cursor> object(const char* key) const;
  Result<std::optional<Cursor>> optObject(const char* key) const;
  Result<Cursor> array(const char* key) const;
  Result<std::optional<Cursor>> optArray(const char* key) const;
  Result<std::string> str(const char* key) const;
  Result<std::string> optStr(const char* key) const;  // "" when absent
  Result<bool> optBool(const char* key, bool absent = false) const;
  template <std::integral T>
  Result<T> number(const char* key) const;
  template <std::integral T>
  Result<std::optional<T>> optNumber(const char* key) const;
  Result<int64_t> int64(const char* key) const { return number<int64_t>(key); }
  Result<uint64_t> uint64(const char* key) const { return number<uint64_t>(key); }
  Result<std::optional<int64_t>> optInt64(const char* key) const { return optNumber<int64_t>(key); }
  Result<std::optional<uint64_t>> optUint64(const char* key) const {
    return optNumber<uint64_t>(key);
  }
  // An array of strings (absent: empty), a map of strings (absent: empty).
  Result<std::vector<std::string>> optStrings(const char* key) const;
  Result<std::map<std::string, std::string>> optStringMap(const char* key) const;

  // This array's length, or 0 when it is not an array.
  size_t size() const { return value_->IsArray() ? value_->Size() : 0; }
  // Element `i` of this array.
  Result<Cursor> at(size_t i) const;
  // Each element of this array, in order, with its index in the path; the
  // first error stops the walk and is returned.
  Result<void> each(const std::function<Result<void>(const Cursor&)>& fn) const;
  // Each member of this object.
  Result<void> members(
      const std::function<Result<void>(const std::string& name, const Cursor&)>& fn) const;
  // Every member of this object is one of `known`; else "PATH.KEY: what".
  Result<void> onlyKeys(const std::set<std::string>& known,
                        const std::string& what = "unknown field") const;

 private:
  struct Origin {
    std::string op, name;
  };
  Cursor(const rapidjson::Value& v, std::shared_ptr<const Origin> origin, std::string path)
      : value_(&v), origin_(std::move(origin)), path_(std::move(path)) {}
  Cursor child(const rapidjson::Value& v, const char* key) const;
  Cursor element(const rapidjson::Value& v, size_t i) const;
  std::unexpected<Error> typeError(const char* want) const;

  const rapidjson::Value* value_;
  std::shared_ptr<const Origin> origin_;
  std::string path_;
};

template <std::integral T>
Result<T> Cursor::asNumber() const {
  // Compare in the widest type of the sign; bool is not a number here.
  if constexpr (std::is_signed_v<T>) {
    if (value_->IsInt64()) {
      int64_t v = value_->GetInt64();
      if (v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max()) {
        return static_cast<T>(v);
      }
      return error("out of range");
    }
  } else {
    if (value_->IsUint64()) {
      uint64_t v = value_->GetUint64();
      if (v <= std::numeric_limits<T>::max()) {
        return static_cast<T>(v);
      }
      return error("out of range");
    }
    if (value_->IsInt64()) {
      return error("must not be negative");
    }
  }
  if (value_->IsNumber()) {
    return error(value_->IsDouble() ? "must be an integer" : "out of range");
  }
  return typeError("an integer");
}

template <std::integral T>
Result<T> Cursor::number(const char* key) const {
  TRY(Cursor c, field(key));
  return c.asNumber<T>();
}

template <std::integral T>
Result<std::optional<T>> Cursor::optNumber(const char* key) const {
  TRY(std::optional<Cursor> c, opt(key));
  if (!c) {
    return std::optional<T>();
  }
  TRY(T v, c->asNumber<T>());
  return std::optional<T>(v);
}

}  // namespace kernelet::json
