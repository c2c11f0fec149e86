#include "apiclient/merge_patch.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "apiclient/json_fields.h"

namespace kernelet::apiclient {

namespace {

using rapidjson::Document;
using rapidjson::Value;
using Alloc = Document::AllocatorType;

Value copy(const Value& v, Alloc& a) { return Value(v, a); }

Value key(const std::string& s, Alloc& a) {
  return Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
}

const Value* findByKey(const Value& list, const std::string& k, const Value& wanted) {
  for (const auto& item : list.GetArray()) {
    if (item.IsObject() && item.HasMember(k.c_str()) && item[k.c_str()] == wanted) {
      return &item;
    }
  }
  return nullptr;
}

Value diffObjects(const Value& from, const Value& to, const MergeKeys& keys, Alloc& a);

// A list merged by `k`: changed and new items (their diff plus the key),
// deletions, and the order of the new list when anything changed.
void diffKeyedList(const std::string& name, const Value& from, const Value& to,
                   const std::string& k, Value& patch, Alloc& a) {
  Value items(rapidjson::kArrayType);
  for (const auto& item : to.GetArray()) {
    if (!item.IsObject() || !item.HasMember(k.c_str())) {
      continue;
    }
    const Value* before = findByKey(from, k, item[k.c_str()]);
    if (before == nullptr) {
      items.PushBack(copy(item, a), a);
      continue;
    }
    Value d = diffObjects(*before, item, {}, a);
    if (d.MemberCount() > 0) {
      d.AddMember(key(k, a), copy(item[k.c_str()], a), a);
      items.PushBack(d, a);
    }
  }
  for (const auto& item : from.GetArray()) {
    if (item.IsObject() && item.HasMember(k.c_str()) &&
        findByKey(to, k, item[k.c_str()]) == nullptr) {
      Value del(rapidjson::kObjectType);
      del.AddMember("$patch", "delete", a);
      del.AddMember(key(k, a), copy(item[k.c_str()], a), a);
      items.PushBack(del, a);
    }
  }
  bool reordered = false;
  if (from.Size() == to.Size()) {
    for (rapidjson::SizeType i = 0; i < to.Size(); i++) {
      reordered =
          reordered || !(from[i].IsObject() && to[i].IsObject() && from[i].HasMember(k.c_str()) &&
                         to[i].HasMember(k.c_str()) && from[i][k.c_str()] == to[i][k.c_str()]);
    }
  } else {
    reordered = true;
  }
  if (items.Empty() && !reordered) {
    return;
  }
  Value order(rapidjson::kArrayType);
  for (const auto& item : to.GetArray()) {
    if (item.IsObject() && item.HasMember(k.c_str())) {
      Value o(rapidjson::kObjectType);
      o.AddMember(key(k, a), copy(item[k.c_str()], a), a);
      order.PushBack(o, a);
    }
  }
  patch.AddMember(key("$setElementOrder/" + name, a), order, a);
  if (!items.Empty()) {
    patch.AddMember(key(name, a), items, a);
  }
}

Value diffObjects(const Value& from, const Value& to, const MergeKeys& keys, Alloc& a) {
  Value patch(rapidjson::kObjectType);
  for (auto m = to.MemberBegin(); m != to.MemberEnd(); ++m) {
    std::string name = m->name.GetString();
    const Value& now = m->value;
    if (!from.HasMember(m->name)) {
      patch.AddMember(key(name, a), copy(now, a), a);
      continue;
    }
    const Value& was = from[m->name];
    if (was == now) {
      continue;
    }
    if (was.IsObject() && now.IsObject()) {
      Value d = diffObjects(was, now, keys, a);
      if (d.MemberCount() > 0) {
        patch.AddMember(key(name, a), d, a);
      }
    } else if (was.IsArray() && now.IsArray() && keys.contains(name) &&
               keys.at(name) == kReplaceList) {
      Value whole = copy(now, a);
      Value directive(rapidjson::kObjectType);
      directive.AddMember("$patch", "replace", a);
      whole.PushBack(directive, a);
      patch.AddMember(key(name, a), whole, a);
    } else if (was.IsArray() && now.IsArray() && keys.contains(name)) {
      diffKeyedList(name, was, now, keys.at(name), patch, a);
    } else {
      patch.AddMember(key(name, a), copy(now, a), a);  // scalars and atomic lists: replaced
    }
  }
  for (auto m = from.MemberBegin(); m != from.MemberEnd(); ++m) {
    if (!to.HasMember(m->name)) {
      patch.AddMember(key(m->name.GetString(), a), Value(rapidjson::kNullType), a);
    }
  }
  return patch;
}

}  // namespace

const MergeKeys& podStatusMergeKeys() {
  static const MergeKeys keys = {{"conditions", "type"}, {"podIPs", "ip"}, {"hostIPs", "ip"}};
  return keys;
}

Result<std::string> twoWayMergePatch(const std::string& old_json, const std::string& new_json,
                                     const MergeKeys& keys) {
  Document from, to;
  from.Parse(old_json.c_str(), old_json.size());
  if (from.HasParseError() || !from.IsObject()) {
    return makeError("merge patch", "old object", "not a JSON object");
  }
  to.Parse(new_json.c_str(), new_json.size());
  if (to.HasParseError() || !to.IsObject()) {
    return makeError("merge patch", "new object", "not a JSON object");
  }
  Document out;
  Value patch = diffObjects(from, to, keys, out.GetAllocator());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  patch.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

Result<std::string> keepForeignConditions(const std::string& api, const std::string& ours,
                                          const std::set<std::string>& owned) {
  TRY(Document from, parseApiJson(api, "the API's pod status"));
  TRY(Document to, parseApiJson(ours, "pod status"));
  if (!to.IsObject()) {
    return makeError("merge conditions", "pod status", "not a JSON object");
  }
  Alloc& a = to.GetAllocator();
  auto typeOf = [](const Value& c) -> std::string {
    return c.IsObject() && c.HasMember("type") && c["type"].IsString() ? c["type"].GetString() : "";
  };
  Value mine(rapidjson::kArrayType);
  if (to.HasMember("conditions") && to["conditions"].IsArray()) {
    mine = to["conditions"].Move();
    to.RemoveMember("conditions");
  }
  // The API's conditions we do not own, in its order; one we set too (a
  // shared one: DisruptionTarget) is ours. Then the rest of ours.
  Value kept(rapidjson::kArrayType);
  std::set<std::string> placed;
  const Value* status = from.IsObject() && from.HasMember("status") ? &from["status"] : nullptr;
  if (status != nullptr && status->IsObject() && status->HasMember("conditions") &&
      (*status)["conditions"].IsArray()) {
    for (const auto& c : (*status)["conditions"].GetArray()) {
      std::string type = typeOf(c);
      if (type.empty() || owned.contains(type) || !placed.insert(type).second) {
        continue;
      }
      const Value* same = nullptr;
      for (const auto& m : mine.GetArray()) {
        if (typeOf(m) == type) {
          same = &m;
        }
      }
      kept.PushBack(copy(same != nullptr ? *same : c, a), a);
    }
  }
  for (auto& m : mine.GetArray()) {
    if (!placed.contains(typeOf(m))) {
      kept.PushBack(copy(m, a), a);
    }
  }
  if (!kept.Empty()) {
    to.AddMember("conditions", kept, a);
  }
  return serialize(to);
}

}  // namespace kernelet::apiclient
