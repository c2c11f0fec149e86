#include "sys/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace kernelet::json {

namespace {

// Forwards the parser's events to the document and stops it when arrays and
// objects nest deeper than the limit.
struct DepthGuard {
  rapidjson::Document& doc;
  unsigned max_depth;
  unsigned depth = 0;
  bool too_deep = false;

  bool Null() { return doc.Null(); }
  bool Bool(bool b) { return doc.Bool(b); }
  bool Int(int i) { return doc.Int(i); }
  bool Uint(unsigned u) { return doc.Uint(u); }
  bool Int64(int64_t i) { return doc.Int64(i); }
  bool Uint64(uint64_t u) { return doc.Uint64(u); }
  bool Double(double d) { return doc.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return doc.RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return doc.Key(s, n, copy); }
  bool enter() {
    if (++depth > max_depth) {
      too_deep = true;
      return false;
    }
    return true;
  }
  bool StartObject() { return enter() && doc.StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    depth--;
    return doc.EndObject(n);
  }
  bool StartArray() { return enter() && doc.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    depth--;
    return doc.EndArray(n);
  }
};

}  // namespace

namespace {

// Fills `doc` from `in` through the depth guard, iteratively.
template <unsigned kFlags, typename Stream>
Result<void> populate(rapidjson::Document& doc, Stream& in, const std::string& op,
                      const std::string& name, unsigned max_depth) {
  rapidjson::ParseResult result;
  bool too_deep = false;
  // Without kParseStopWhenDoneFlag, text after the value is an error rather
  // than silently ignored.
  auto generate = [&](rapidjson::Document& handler) {
    DepthGuard guard{handler, max_depth};
    rapidjson::Reader reader;
    result = reader.Parse<kFlags>(in, guard);
    too_deep = guard.too_deep;
    return !result.IsError();
  };
  doc.Populate(generate);
  if (too_deep) {
    return makeError(op, name,
                     "offset " + std::to_string(result.Offset()) + ": nested deeper than " +
                         std::to_string(max_depth) + " levels");
  }
  if (result.IsError()) {
    return makeError(op, name,
                     "offset " + std::to_string(result.Offset()) + ": " +
                         rapidjson::GetParseError_En(result.Code()));
  }
  return {};
}

}  // namespace

Result<rapidjson::Document> parse(std::string_view text, const std::string& op,
                                  const std::string& name, Limits limits) {
  if (text.size() > limits.max_bytes) {
    return makeError(op, name,
                     "larger than the limit of " + std::to_string(limits.max_bytes) + " bytes");
  }
  rapidjson::Document doc;
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
  // Iterative: the parser keeps its own stack on the heap, so no input can
  // exhaust the thread's stack.
  TRY_VOID(populate<rapidjson::kParseIterativeFlag>(doc, in, op, name, limits.max_depth));
  return doc;
}

Result<void> parseInsitu(rapidjson::Document& doc, char* text, const std::string& op,
                         const std::string& name, Limits limits) {
  rapidjson::InsituStringStream in(text);
  // Recursive, for speed (the iterative parser cost the watch decoder 30% of its
  // throughput), and still bounded: the guard ends the parse as it enters level
  // max_depth + 1, so the parser recurses at most max_depth levels of a few
  // hundred bytes of stack each.
  return populate<rapidjson::kParseInsituFlag>(doc, in, op, name, limits.max_depth);
}

Cursor::Cursor(const rapidjson::Value& root, std::string op, std::string name)
    : value_(&root),
      origin_(std::make_shared<const Origin>(Origin{std::move(op), std::move(name)})) {}

std::unexpected<Error> Cursor::error(const std::string& what) const {
  return makeError(origin_->op, origin_->name, path_.empty() ? what : path_ + ": " + what);
}

std::unexpected<Error> Cursor::errorAt(const std::string& key, const std::string& what) const {
  return child(*value_, key.c_str()).error(what);
}

std::unexpected<Error> Cursor::typeError(const char* want) const {
  return error(std::string("must be ") + want);
}

Cursor Cursor::child(const rapidjson::Value& v, const char* key) const {
  return Cursor(v, origin_, path_.empty() ? std::string(key) : path_ + "." + key);
}

Cursor Cursor::element(const rapidjson::Value& v, size_t i) const {
  return Cursor(v, origin_, path_ + "[" + std::to_string(i) + "]");
}

bool Cursor::has(const char* key) const {
  if (!value_->IsObject()) {
    return false;
  }
  auto it = value_->FindMember(key);
  return it != value_->MemberEnd() && !it->value.IsNull();
}

Result<void> Cursor::expectObject() const {
  if (!value_->IsObject()) {
    return typeError("an object");
  }
  return {};
}

Result<void> Cursor::expectArray() const {
  if (!value_->IsArray()) {
    return typeError("an array");
  }
  return {};
}

Result<std::string> Cursor::asString() const {
  if (!value_->IsString()) {
    return typeError("a string");
  }
  // With its length: a string may hold NUL bytes, which must not cut it short.
  return std::string(value_->GetString(), value_->GetStringLength());
}

Result<bool> Cursor::asBool() const {
  if (!value_->IsBool()) {
    return typeError("true or false");
  }
  return value_->GetBool();
}

Result<std::optional<Cursor>> Cursor::opt(const char* key) const {
  TRY_VOID(expectObject());
  auto it = value_->FindMember(key);
  if (it == value_->MemberEnd() || it->value.IsNull()) {
    return std::optional<Cursor>();
  }
  return std::optional<Cursor>(child(it->value, key));
}

Result<Cursor> Cursor::field(const char* key) const {
  TRY(std::optional<Cursor> c, opt(key));
  if (!c) {
    return child(*value_, key).error("required");
  }
  return *c;
}

Result<Cursor> Cursor::object(const char* key) const {
  TRY(Cursor c, field(key));
  TRY_VOID(c.expectObject());
  return c;
}

Result<std::optional<Cursor>> Cursor::optObject(const char* key) const {
  TRY(std::optional<Cursor> c, opt(key));
  if (c) {
    TRY_VOID(c->expectObject());
  }
  return c;
}

Result<Cursor> Cursor::array(const char* key) const {
  TRY(Cursor c, field(key));
  TRY_VOID(c.expectArray());
  return c;
}

Result<std::optional<Cursor>> Cursor::optArray(const char* key) const {
  TRY(std::optional<Cursor> c, opt(key));
  if (c) {
    TRY_VOID(c->expectArray());
  }
  return c;
}

Result<std::string> Cursor::str(const char* key) const {
  TRY(Cursor c, field(key));
  return c.asString();
}

Result<std::string> Cursor::optStr(const char* key) const {
  TRY(std::optional<Cursor> c, opt(key));
  if (!c) {
    return std::string();
  }
  return c->asString();
}

Result<bool> Cursor::optBool(const char* key, bool absent) const {
  TRY(std::optional<Cursor> c, opt(key));
  if (!c) {
    return absent;
  }
  return c->asBool();
}

Result<std::vector<std::string>> Cursor::optStrings(const char* key) const {
  std::vector<std::string> out;
  TRY(std::optional<Cursor> list, optArray(key));
  if (list) {
    TRY_VOID(list->each([&](const Cursor& item) -> Result<void> {
      TRY(std::string s, item.asString());
      out.push_back(std::move(s));
      return {};
    }));
  }
  return out;
}

Result<std::map<std::string, std::string>> Cursor::optStringMap(const char* key) const {
  std::map<std::string, std::string> out;
  TRY(std::optional<Cursor> map, optObject(key));
  if (map) {
    TRY_VOID(map->members([&](const std::string& name, const Cursor& v) -> Result<void> {
      TRY(out[name], v.asString());
      return {};
    }));
  }
  return out;
}

Result<Cursor> Cursor::at(size_t i) const {
  TRY_VOID(expectArray());
  if (i >= value_->Size()) {
    return error("has no element " + std::to_string(i));
  }
  return element((*value_)[static_cast<rapidjson::SizeType>(i)], i);
}

Result<void> Cursor::each(const std::function<Result<void>(const Cursor&)>& fn) const {
  TRY_VOID(expectArray());
  size_t i = 0;
  for (const auto& v : value_->GetArray()) {
    TRY_VOID(fn(element(v, i++)));
  }
  return {};
}

Result<void> Cursor::members(
    const std::function<Result<void>(const std::string& name, const Cursor&)>& fn) const {
  TRY_VOID(expectObject());
  for (auto m = value_->MemberBegin(); m != value_->MemberEnd(); ++m) {
    // A member's name is always a string in parsed JSON.
    std::string name(m->name.GetString(), m->name.GetStringLength());
    TRY_VOID(fn(name, child(m->value, name.c_str())));
  }
  return {};
}

Result<void> Cursor::onlyKeys(const std::set<std::string>& known, const std::string& what) const {
  return members([&](const std::string& name, const Cursor& v) -> Result<void> {
    if (!known.contains(name)) {
      return v.error(what);
    }
    return {};
  });
}

}  // namespace kernelet::json
