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
#include <ctime>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "images/digest.h"
#include "images/keyring.h"
#include "images/reference.h"
#include "images/unpack.h"
#include "sys/fileio.h"
#include "sys/json.h"
#include "sys/unique_fd.h"

namespace kernelet::images {

namespace fs = std::filesystem;
using rapidjson::Document;

namespace {

constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr const char* kRefName = "org.opencontainers.image.ref.name";

// A blob's size from its descriptor: required, and never negative (a
// negative size means "a manifest" to a BlobSource).
Result<int64_t> blobSize(const json::Cursor& descriptor) {
  TRY(int64_t size, descriptor.int64("size"));
  if (size < 0) {
    return descriptor.error("size: must not be negative");
  }
  return size;
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

// Puts `r` in the list in place of the record of its name. Pulled or imported
// now counts as used now; an image the store already had (by id) keeps when
// it was first detected, so a re-pull does not make it young again.
void record(std::vector<ImageRecord>& all, ImageRecord r, int64_t now) {
  r.first_detected = now;
  for (const auto& x : all) {
    if (x.config_digest == r.config_digest && x.first_detected > 0) {
      r.first_detected = std::min(r.first_detected, x.first_detected);
    }
  }
  r.last_used = now;
  std::erase_if(all, [&](const ImageRecord& x) { return x.name == r.name; });
  all.push_back(std::move(r));
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
  // Our own file, but read as carefully as any: a damaged one is an error, not a crash.
  TRY(Document d, json::parse(text, "read image list", path));
  json::Cursor top(d, "read image list", path);
  TRY_VOID(top.each([&](const json::Cursor& v) -> Result<void> {
    ImageRecord r;
    TRY(r.name, v.str("name"));
    TRY(r.manifest_digest, v.str("manifest"));
    TRY(r.config_digest, v.str("config"));
    TRY(auto size, v.optInt64("size"));
    TRY(auto last_used, v.optInt64("lastUsed"));
    TRY(auto first_detected, v.optInt64("firstDetected"));
    r.size = size.value_or(0);
    r.last_used = last_used.value_or(0);
    // A store older than the field: first seen when last used, at worst.
    r.first_detected = first_detected.value_or(r.last_used);
    TRY(auto layers, v.optArray("layers"));
    if (layers) {
      TRY_VOID(layers->each([&](const json::Cursor& l) -> Result<void> {
        LayerRecord layer;
        TRY(layer.digest, l.str("digest"));
        TRY(layer.diff_id, l.str("diffID"));
        TRY(auto layer_size, l.optInt64("size"));
        layer.size = layer_size.value_or(0);
        TRY(layer.media_type, l.optStr("mediaType"));
        r.layers.push_back(std::move(layer));
        return {};
      }));
    }
    out.push_back(std::move(r));
    return {};
  }));
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
  w.Key("firstDetected");
  w.Int64(r.first_detected);
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
  // Depth-limited like every read of a blob: the writer below recurses.
  auto doc = json::parse(config, "decode", "config " + image.config_digest);
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  w.StartObject();
  writeRecord(w, image);
  if (doc) {
    w.Key("imageConfig");
    doc->Accept(w);
  }
  w.EndObject();
  return std::string(buf.GetString()) + "\n";
}

Result<ImageRecord> ImageStore::recordManifest(const std::string& digest, const std::string& name,
                                               BlobSource& source) {
  TRY_VOID(validateDigest(digest));
  TRY_VOID(source.fetch(digest, -1));
  TRY(std::string text, content_.read(digest));
  const std::string where = "manifest " + digest;
  TRY(Document m, json::parse(text, "decode", where));
  json::Cursor manifest(m, "decode", where);
  TRY(std::string media, manifest.optStr("mediaType"));
  if (media == kOciIndex || media == kDockerList || manifest.has("manifests")) {
    // A multi-platform index: take linux/amd64.
    TRY(json::Cursor entries, manifest.array("manifests"));
    for (size_t i = 0; i < entries.size(); i++) {
      TRY(json::Cursor entry, entries.at(i));
      TRY(std::optional<json::Cursor> platform, entry.optObject("platform"));
      const json::Cursor& p = platform ? *platform : entry;
      TRY(std::string os, p.optStr("os"));
      TRY(std::string arch, p.optStr("architecture"));
      if (os == "linux" && arch == "amd64") {
        TRY(std::string chosen, entry.str("digest"));
        return recordManifest(chosen, name, source);
      }
    }
    return makeError("import image", name, "the index " + digest + " has no linux/amd64 image");
  }
  if (!manifest.has("config") || !manifest.has("layers")) {
    return makeError("import image", name, "manifest " + digest + " has no config or layers");
  }
  TRY(json::Cursor config_ref, manifest.object("config"));
  TRY(json::Cursor layers, manifest.array("layers"));
  ImageRecord r{.name = name, .manifest_digest = digest};
  TRY(r.config_digest, config_ref.str("digest"));
  TRY_VOID(validateDigest(r.config_digest));
  TRY(int64_t config_size, blobSize(config_ref));
  TRY_VOID(addContext(source.fetch(r.config_digest, config_size), "config of " + name));
  TRY(std::string config_text, content_.read(r.config_digest));
  const std::string config_where = "config " + r.config_digest;
  TRY(Document config, json::parse(config_text, "decode", config_where));
  json::Cursor image_config(config, "decode", config_where);
  TRY(json::Cursor rootfs, image_config.object("rootfs"));
  TRY(json::Cursor diff_ids, rootfs.array("diff_ids"));
  if (diff_ids.size() != layers.size()) {
    return makeError("import image", name, "config diff_ids do not match the manifest's layers");
  }
  std::vector<std::pair<std::string, int64_t>> blobs;
  for (size_t i = 0; i < layers.size(); i++) {
    TRY(json::Cursor l, layers.at(i));
    TRY(json::Cursor diff_id, diff_ids.at(i));
    LayerRecord layer;
    TRY(layer.digest, l.str("digest"));
    TRY(layer.diff_id, diff_id.asString());
    TRY(layer.size, blobSize(l));
    TRY(layer.media_type, l.optStr("mediaType"));
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
    const std::string index_path = layout + "/index.json";
    TRY(std::string index_text, readFile(index_path));
    TRY(Document index, json::parse(index_text, "decode", index_path));
    json::Cursor top(index, "decode", index_path);
    TRY(std::optional<json::Cursor> manifests, top.optArray("manifests"));
    if (!manifests || manifests->size() == 0) {
      return makeError("import image layout", layout, "index.json lists no manifests");
    }
    if (!name.empty() && manifests->size() > 1) {
      return makeError("import image layout", layout,
                       "--name needs a layout with one image; this one has " +
                           std::to_string(manifests->size()));
    }
    std::vector<ImageRecord> imported;
    for (size_t i = 0; i < manifests->size(); i++) {
      TRY(json::Cursor entry, manifests->at(i));
      TRY(std::string digest, entry.str("digest"));
      std::string ref = name;
      if (ref.empty()) {
        TRY(auto annotations, entry.optStringMap("annotations"));
        ref = annotations[kRefName];
      }
      if (ref.empty()) {
        return makeError("import image layout", layout,
                         "a manifest has no " + std::string(kRefName) + " annotation; pass --name");
      }
      TRY(Reference parsed, parseReference(ref));
      BlobSource from_layout{.fetch = [&](const std::string& d, int64_t size) {
        return content_.putFile(d, layout + "/blobs/sha256/" + digestHex(d), size);
      }};
      TRY(ImageRecord r, recordManifest(digest, parsed.str(), from_layout));
      imported.push_back(std::move(r));
    }
    TRY_VOID(update([&](std::vector<ImageRecord>& all) {
      for (const auto& r : imported) {
        record(all, r, ::time(nullptr));
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

Result<void> ImageStore::touchAll(const std::vector<std::string>& names, int64_t now) {
  if (names.empty()) {
    return {};
  }
  std::set<std::string> wanted(names.begin(), names.end());
  return update([&](std::vector<ImageRecord>& all) {
    for (auto& x : all) {
      if (wanted.contains(x.name)) {
        x.last_used = std::max(x.last_used, now);
      }
    }
  });
}

Result<ImageRecord> ImageStore::pull(const std::string& ref, const RegistryOptions& options,
                                     const Progress& progress) {
  TRY(Reference parsed, parseReference(ref));
  // One download per reference at a time: later callers wait for the first.
  static std::mutex mu;
  static std::map<std::string, std::shared_future<Result<ImageRecord>>> inflight;
  // Pulls with other credentials are other pulls: one that fails for want of
  // credentials must not fail a pod that has them, nor may a pod's
  // credentials end up in another's pull. The key holds a digest of them only.
  std::string key = root_ + "|" + parsed.str() + "|" + credentialsFingerprint(options.credentials);
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
  auto result = pullWithEachCredential(parsed, options, progress);
  promise.set_value(result);
  std::lock_guard lock(mu);
  inflight.erase(key);
  return result;
}

Result<ImageRecord> ImageStore::pullWithEachCredential(const Reference& ref,
                                                       const RegistryOptions& options,
                                                       const Progress& progress) {
  // The pod's credentials first, then the node's, each match in turn until one
  // pull works (the kubelet's PullImage over a union keyring).
  std::vector<RegistryCredentials> tries = options.credentials;
  if (!options.docker_config.empty()) {
    TRY(DockerAuths auths, loadDockerAuthFile(options.docker_config));
    DockerKeyring node;
    node.add(auths);
    auto more = node.lookup(ref.domain + "/" + ref.repository);
    tries.insert(tries.end(), more.begin(), more.end());
  }
  RegistryOptions one = options;
  one.docker_config.clear();
  one.credentials.clear();
  if (tries.empty()) {
    return pullOnce(ref.str(), one, progress);
  }
  std::vector<Error> errors;
  for (const auto& c : tries) {
    one.credentials = {c};
    auto r = pullOnce(ref.str(), one, progress);
    if (r) {
      return r;
    }
    errors.push_back(r.error());
  }
  if (errors.size() == 1) {
    return std::unexpected(errors.front());
  }
  // As utilerrors.NewAggregate prints several: "[first, second]".
  std::string all;
  for (const auto& e : errors) {
    all += (all.empty() ? "" : ", ") + e.message();
  }
  return std::unexpected(Error{.op = "[" + all + "]"});
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
  TRY_VOID(update([&](std::vector<ImageRecord>& all) { record(all, r, ::time(nullptr)); }));
  say("pulled " + parsed.str());
  return r;
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
