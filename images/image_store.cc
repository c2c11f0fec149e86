#include "images/image_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "images/digest.h"
#include "images/reference.h"
#include "images/unpack.h"
#include "sys/fileio.h"
#include "sys/unique_fd.h"

namespace kernelet::images {

namespace fs = std::filesystem;
using rapidjson::Document;
using rapidjson::Value;

namespace {

constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr const char* kRefName = "org.opencontainers.image.ref.name";

Result<Document> parseJson(const std::string& text, const std::string& what) {
  Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject()) {
    return makeError("parse", what, "not a JSON object");
  }
  return d;
}

std::string str(const Value& v, const char* key) {
  return v.IsObject() && v.HasMember(key) && v[key].IsString() ? v[key].GetString() : "";
}

// Extracts a tar of an OCI layout into `dir` (plain files and dirs only).
Result<void> extractLayoutTar(const std::string& tar, const std::string& dir) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_none(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), tar.c_str(), 1 << 20) != ARCHIVE_OK) {
    return makeError("open image archive", tar, archive_error_string(a.get()));
  }
  archive_entry* e;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e);
    fs::path clean = fs::path(name).lexically_normal();
    if (clean.is_absolute() || clean.string().starts_with("..")) {
      return makeError("read image archive", tar, "entry " + name + " leaves the layout");
    }
    fs::path out = fs::path(dir) / clean;
    if (archive_entry_filetype(e) == AE_IFDIR) {
      fs::create_directories(out);
      continue;
    }
    if (archive_entry_filetype(e) != AE_IFREG) {
      continue;  // a layout holds only files and directories
    }
    fs::create_directories(out.parent_path());
    UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) {
      return sysError("create", out);
    }
    if (archive_read_data_into_fd(a.get(), fd.get()) != ARCHIVE_OK) {
      return makeError("read image archive", tar, archive_error_string(a.get()));
    }
  }
  if (rc != ARCHIVE_EOF) {
    return makeError("read image archive", tar, archive_error_string(a.get()));
  }
  return {};
}

}  // namespace

Result<ImageStore> ImageStore::open(const std::string& root) {
  TRY(ContentStore content, ContentStore::open(root + "/content"));
  std::error_code ec;
  fs::create_directories(root + "/layers", ec);
  if (ec) {
    return makeError("create image store", root, ec.message());
  }
  return ImageStore(root, std::move(content));
}

Result<std::vector<ImageRecord>> ImageStore::list() const {
  std::string path = root_ + "/images.json";
  std::vector<ImageRecord> out;
  if (::access(path.c_str(), F_OK) != 0) {
    return out;
  }
  TRY(std::string text, readFile(path));
  Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsArray()) {
    return makeError("read image list", path, "corrupt");
  }
  for (const auto& v : d.GetArray()) {
    ImageRecord r{.name = str(v, "name"),
                  .manifest_digest = str(v, "manifest"),
                  .config_digest = str(v, "config"),
                  .size = v.HasMember("size") ? v["size"].GetInt64() : 0,
                  .last_used = v.HasMember("lastUsed") ? v["lastUsed"].GetInt64() : 0};
    if (v.HasMember("layers") && v["layers"].IsArray()) {
      for (const auto& l : v["layers"].GetArray()) {
        r.layers.push_back({str(l, "digest"), str(l, "diffID"),
                            l.HasMember("size") ? l["size"].GetInt64() : 0, str(l, "mediaType")});
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

// One record, as images.json keeps it and `kernelet images inspect` shows it.
template <typename Writer>
void writeRecord(Writer& w, const ImageRecord& r) {
  w.Key("name");
  w.String(r.name.c_str());
  w.Key("manifest");
  w.String(r.manifest_digest.c_str());
  w.Key("config");
  w.String(r.config_digest.c_str());
  w.Key("size");
  w.Int64(r.size);
  w.Key("lastUsed");
  w.Int64(r.last_used);
  w.Key("layers");
  w.StartArray();
  for (const auto& l : r.layers) {
    w.StartObject();
    w.Key("digest");
    w.String(l.digest.c_str());
    w.Key("diffID");
    w.String(l.diff_id.c_str());
    w.Key("size");
    w.Int64(l.size);
    w.Key("mediaType");
    w.String(l.media_type.c_str());
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

Result<void> ImageStore::save(const std::vector<ImageRecord>& images) const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const auto& r : images) {
    w.StartObject();
    writeRecord(w, r);
    w.EndObject();
  }
  w.EndArray();
  return writeFileAtomic(root_ + "/images.json", buf.GetString(), 0644);
}

Result<std::string> ImageStore::inspectJson(const ImageRecord& image) const {
  TRY(std::string config, configJson(image));
  Document doc;
  doc.Parse(config.c_str(), config.size());
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  w.StartObject();
  writeRecord(w, image);
  if (!doc.HasParseError()) {
    w.Key("imageConfig");
    doc.Accept(w);
  }
  w.EndObject();
  return std::string(buf.GetString()) + "\n";
}

Result<ImageRecord> ImageStore::recordManifest(const std::string& digest, const std::string& name,
                                               BlobSource& source) {
  TRY_VOID(validateDigest(digest));
  TRY_VOID(source.fetch(digest, -1));
  TRY(std::string text, content_.read(digest));
  TRY(Document m, parseJson(text, "manifest " + digest));
  std::string media = str(m, "mediaType");
  if (media == kOciIndex || media == kDockerList || m.HasMember("manifests")) {
    // A multi-platform index: take linux/amd64.
    for (const auto& entry : m["manifests"].GetArray()) {
      const Value& p = entry.HasMember("platform") ? entry["platform"] : entry;
      if (str(p, "os") == "linux" && str(p, "architecture") == "amd64") {
        return recordManifest(str(entry, "digest"), name, source);
      }
    }
    return makeError("import image", name, "the index " + digest + " has no linux/amd64 image");
  }
  if (!m.HasMember("config") || !m.HasMember("layers") || !m["layers"].IsArray()) {
    return makeError("import image", name, "manifest " + digest + " has no config or layers");
  }
  ImageRecord r{.name = name, .manifest_digest = digest};
  r.config_digest = str(m["config"], "digest");
  TRY_VOID(validateDigest(r.config_digest));
  TRY_VOID(
      addContext(source.fetch(r.config_digest,
                              m["config"].HasMember("size") ? m["config"]["size"].GetInt64() : -1),
                 "config of " + name));
  TRY(std::string config_text, content_.read(r.config_digest));
  TRY(Document config, parseJson(config_text, "config " + r.config_digest));
  if (!config.HasMember("rootfs") || !config["rootfs"].HasMember("diff_ids") ||
      config["rootfs"]["diff_ids"].Size() != m["layers"].Size()) {
    return makeError("import image", name, "config diff_ids do not match the manifest's layers");
  }
  size_t i = 0;
  std::vector<std::pair<std::string, int64_t>> blobs;
  for (const auto& l : m["layers"].GetArray()) {
    LayerRecord layer{str(l, "digest"), config["rootfs"]["diff_ids"][i++].GetString(),
                      l.HasMember("size") ? l["size"].GetInt64() : -1, str(l, "mediaType")};
    TRY_VOID(validateDigest(layer.digest));
    TRY_VOID(validateDigest(layer.diff_id));
    blobs.push_back({layer.digest, layer.size});
    r.size += layer.size;
    r.layers.push_back(std::move(layer));
  }
  if (source.fetchAll) {
    TRY_VOID(addContext(source.fetchAll(blobs), "layers of " + name));
  } else {
    for (const auto& [d, size] : blobs) {
      TRY_VOID(addContext(source.fetch(d, size), "layer of " + name));
    }
  }
  for (const auto& layer : r.layers) {
    std::string dir = root_ + "/layers/" + digestHex(layer.diff_id);
    if (::access(dir.c_str(), F_OK) != 0) {
      TRY(auto unpacked,
          unpackLayerAtomically(content_.path(layer.digest), dir, layer.digest, layer.diff_id));
      (void)unpacked;
    }
  }
  return r;
}

Result<std::vector<ImageRecord>> ImageStore::importLayout(const std::string& path,
                                                          const std::string& name) {
  std::string layout = path;
  std::string scratch;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return sysError("open image layout", path);
  }
  if (!S_ISDIR(st.st_mode)) {
    std::string tmpl = root_ + "/import-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return sysError("create", tmpl);
    }
    scratch = tmpl;
    auto extracted = extractLayoutTar(path, scratch);
    if (!extracted) {
      fs::remove_all(scratch);
      return std::unexpected(extracted.error());
    }
    layout = scratch;
  }
  auto cleanup = [&] {
    if (!scratch.empty()) {
      std::error_code ec;
      fs::remove_all(scratch, ec);
    }
  };
  auto run = [&]() -> Result<std::vector<ImageRecord>> {
    TRY(std::string index_text, readFile(layout + "/index.json"));
    TRY(Document index, parseJson(index_text, layout + "/index.json"));
    if (!index.HasMember("manifests") || !index["manifests"].IsArray() ||
        index["manifests"].Empty()) {
      return makeError("import image layout", layout, "index.json lists no manifests");
    }
    if (!name.empty() && index["manifests"].Size() > 1) {
      return makeError("import image layout", layout,
                       "--name needs a layout with one image; this one has " +
                           std::to_string(index["manifests"].Size()));
    }
    std::vector<ImageRecord> imported;
    for (const auto& entry : index["manifests"].GetArray()) {
      std::string ref = name;
      if (ref.empty() && entry.HasMember("annotations")) {
        ref = str(entry["annotations"], kRefName);
      }
      if (ref.empty()) {
        return makeError("import image layout", layout,
                         "a manifest has no " + std::string(kRefName) + " annotation; pass --name");
      }
      TRY(Reference parsed, parseReference(ref));
      BlobSource from_layout{.fetch = [&](const std::string& d, int64_t size) {
        return content_.putFile(d, layout + "/blobs/sha256/" + digestHex(d), size);
      }};
      TRY(ImageRecord r, recordManifest(str(entry, "digest"), parsed.str(), from_layout));
      imported.push_back(std::move(r));
    }
    TRY_VOID(update([&](std::vector<ImageRecord>& all) {
      for (const auto& r : imported) {
        std::erase_if(all, [&](const ImageRecord& x) { return x.name == r.name; });
        all.push_back(r);
      }
    }));
    return imported;
  };
  auto result = run();
  cleanup();
  return result;
}

Result<ImageRecord> ImageStore::find(const std::string& ref) const {
  TRY(std::vector<ImageRecord> all, list());
  for (const auto& r : all) {
    if (r.name == ref || r.config_digest == ref || r.manifest_digest == ref) {
      return r;
    }
  }
  auto parsed = parseReference(ref);
  if (parsed) {
    for (const auto& r : all) {
      if (r.name == parsed->str() ||
          (!parsed->digest.empty() && r.manifest_digest == parsed->digest)) {
        return r;
      }
    }
  }
  return makeError("find image", ref, "no such image");
}

Result<void> ImageStore::remove(const std::string& ref) {
  TRY(ImageRecord r, find(ref));
  TRY_VOID(update([&](std::vector<ImageRecord>& all) {
    std::erase_if(all, [&](const ImageRecord& x) { return x.name == r.name; });
  }));
  return collectGarbage();
}

Result<void> ImageStore::touch(const std::string& ref, int64_t now) {
  TRY(ImageRecord r, find(ref));
  return update([&](std::vector<ImageRecord>& all) {
    for (auto& x : all) {
      if (x.name == r.name) {
        x.last_used = now;
      }
    }
  });
}

Result<void> ImageStore::update(const std::function<void(std::vector<ImageRecord>&)>& change) {
  static std::mutex threads;
  std::lock_guard lock(threads);
  std::string path = root_ + "/images.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd || ::flock(fd.get(), LOCK_EX) != 0) {
    return sysError("lock", path);
  }
  TRY(std::vector<ImageRecord> all, list());
  change(all);
  return save(all);
}

Result<ImageRecord> ImageStore::pull(const std::string& ref, const RegistryOptions& options,
                                     const Progress& progress) {
  TRY(Reference parsed, parseReference(ref));
  // One download per reference at a time: later callers wait for the first.
  static std::mutex mu;
  static std::map<std::string, std::shared_future<Result<ImageRecord>>> inflight;
  std::string key = root_ + "|" + parsed.str();
  std::promise<Result<ImageRecord>> promise;
  std::shared_future<Result<ImageRecord>> future;
  bool mine = false;
  {
    std::lock_guard lock(mu);
    auto it = inflight.find(key);
    if (it != inflight.end()) {
      future = it->second;
    } else {
      future = promise.get_future().share();
      inflight[key] = future;
      mine = true;
    }
  }
  if (!mine) {
    return future.get();
  }
  auto result = pullOnce(parsed.str(), options, progress);
  promise.set_value(result);
  std::lock_guard lock(mu);
  inflight.erase(key);
  return result;
}

Result<ImageRecord> ImageStore::pullOnce(const std::string& ref, const RegistryOptions& options,
                                         const Progress& progress) {
  TRY(Reference parsed, parseReference(ref));
  TRY(Registry registry, Registry::open(parsed, options));
  auto say = [&](const std::string& what) {
    if (progress) {
      progress(what);
    }
  };
  say("resolving " + parsed.str());
  TRY(FetchedManifest top, registry.manifest(parsed.digest.empty() ? parsed.tag : parsed.digest));
  TRY_VOID(content_.put(top.digest, top.body));
  std::atomic<int> done{0};
  BlobSource from_registry;
  from_registry.fetch = [&](const std::string& d, int64_t size) -> Result<void> {
    if (content_.has(d)) {
      return {};
    }
    // Manifests (of an index) come through the manifests endpoint, blobs through blobs.
    if (size < 0) {
      TRY(FetchedManifest m, registry.manifest(d));
      return content_.put(d, m.body);
    }
    return registry.blob(d, size, content_);
  };
  from_registry.fetchAll = [&](const std::vector<std::pair<std::string, int64_t>>& blobs) {
    // A few layers at a time, each on its own connection.
    std::vector<Result<void>> results(blobs.size());
    std::atomic<size_t> next{0};
    std::vector<std::thread> workers;
    for (size_t w = 0; w < std::min<size_t>(4, blobs.size()); w++) {
      workers.emplace_back([&] {
        for (size_t i; (i = next++) < blobs.size();) {
          results[i] = registry.blob(blobs[i].first, blobs[i].second, content_);
          say("layers " + std::to_string(++done) + "/" + std::to_string(blobs.size()));
        }
      });
    }
    for (auto& w : workers) {
      w.join();
    }
    for (auto& r : results) {
      if (!r) {
        return r;
      }
    }
    return Result<void>{};
  };
  TRY(ImageRecord r, recordManifest(top.digest, parsed.str(), from_registry));
  // An image pulled by tag is known by its top digest (the index's, if any).
  r.manifest_digest = top.digest;
  TRY_VOID(update([&](std::vector<ImageRecord>& all) {
    std::erase_if(all, [&](const ImageRecord& x) { return x.name == r.name; });
    all.push_back(r);
  }));
  say("pulled " + parsed.str());
  return r;
}

Result<void> ImageStore::collectGarbage() {
  TRY(std::vector<ImageRecord> all, list());
  std::set<std::string> blobs, layers;
  for (const auto& r : all) {
    blobs.insert(digestHex(r.manifest_digest));
    blobs.insert(digestHex(r.config_digest));
    for (const auto& l : r.layers) {
      blobs.insert(digestHex(l.digest));
      layers.insert(digestHex(l.diff_id));
    }
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(content_.root() + "/blobs/sha256", ec)) {
    if (!blobs.contains(e.path().filename())) {
      fs::remove(e.path(), ec);
    }
  }
  for (const auto& e : fs::directory_iterator(root_ + "/layers", ec)) {
    if (!layers.contains(e.path().filename())) {
      fs::remove_all(e.path(), ec);
    }
  }
  return {};
}

std::vector<std::string> ImageStore::lowerDirs(const ImageRecord& image) const {
  std::vector<std::string> out;
  for (auto it = image.layers.rbegin(); it != image.layers.rend(); ++it) {
    out.push_back(root_ + "/layers/" + digestHex(it->diff_id));
  }
  return out;
}

Result<std::string> ImageStore::configJson(const ImageRecord& image) const {
  return content_.read(image.config_digest);
}

}  // namespace kernelet::images
