#include "agent/lifecycle/allocation_checkpoint.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <filesystem>

#include "sys/fileio.h"
#include "sys/json.h"

namespace kernelet::agent {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void writeList(Writer& w, const char* key, const ResourceList& l) {
  w.Key(key);
  w.StartObject();
  for (const auto& [name, q] : l) {
    w.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
    std::string s = q.str();
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  }
  w.EndObject();
}

void writeResources(Writer& w, const char* key, const ContainerResources& r) {
  w.Key(key);
  w.StartObject();
  writeList(w, "requests", r.requests);
  writeList(w, "limits", r.limits);
  w.EndObject();
}

Result<ResourceList> readList(const json::Cursor& r, const char* key) {
  ResourceList out;
  TRY(std::optional<json::Cursor> list, r.optObject(key));
  if (!list) {
    return out;
  }
  TRY_VOID(list->members([&](const std::string& name, const json::Cursor& v) -> Result<void> {
    TRY(std::string text, v.asString());
    auto q = apiclient::Quantity::parse(text);
    if (!q) {
      return v.error("not a quantity: \"" + text + "\"");
    }
    out.emplace(name, *q);
    return {};
  }));
  return out;
}

Result<ContainerResources> readResources(const json::Cursor& c) {
  TRY_VOID(c.onlyKeys({"requests", "limits"}));
  ContainerResources r;
  TRY(r.requests, readList(c, "requests"));
  TRY(r.limits, readList(c, "limits"));
  return r;
}

}  // namespace

std::string allocationPath(const std::string& root_dir, const std::string& pod_uid) {
  return root_dir + "/pods/" + pod_uid + "/allocation.json";
}

std::string toJson(const PodAllocation& a) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("version");
  w.Int(PodAllocation::kVersion);
  w.Key("containers");
  w.StartObject();
  for (const auto& [name, c] : a.containers) {
    w.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
    w.StartObject();
    writeResources(w, "allocated", c.allocated);
    if (c.actuated) {
      writeResources(w, "actuated", *c.actuated);
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

Result<PodAllocation> parseAllocation(std::string_view text, const std::string& path) {
  // Ours and small: anything bigger or deeper is not.
  TRY(rapidjson::Document doc, json::parse(text, "read allocation checkpoint", path,
                                           {.max_bytes = 1u << 20, .max_depth = 8}));
  json::Cursor root(doc, "read allocation checkpoint", path);
  PodAllocation a;
  TRY(int version, root.number<int>("version"));
  if (version != PodAllocation::kVersion) {
    return root.errorAt("version", "version " + std::to_string(version) + " is not this build's (" +
                                       std::to_string(PodAllocation::kVersion) + ")");
  }
  TRY_VOID(root.onlyKeys({"version", "containers"}));
  TRY(json::Cursor containers, root.object("containers"));
  TRY_VOID(containers.members([&](const std::string& name, const json::Cursor& c) -> Result<void> {
    TRY_VOID(c.onlyKeys({"allocated", "actuated"}));
    ContainerAllocation& ca = a.containers[name];
    TRY(json::Cursor allocated, c.object("allocated"));
    TRY(ca.allocated, readResources(allocated));
    TRY(std::optional<json::Cursor> actuated, c.optObject("actuated"));
    if (actuated) {
      TRY(ca.actuated, readResources(*actuated));
    }
    return {};
  }));
  return a;
}

Result<std::optional<PodAllocation>> readAllocation(const std::string& path) {
  auto text = readFile(path);
  if (!text) {
    if (text.error().errnum == ENOENT) {
      return std::optional<PodAllocation>();
    }
    return std::unexpected(text.error());
  }
  TRY(PodAllocation a, parseAllocation(*text, path));
  return std::optional(std::move(a));
}

Result<void> writeAllocation(const std::string& path, const PodAllocation& a) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) {
    return sysError(ec.value(), "mkdir", std::filesystem::path(path).parent_path().string());
  }
  return writeFileAtomic(path, toJson(a), 0600);
}

}  // namespace kernelet::agent
