#include "images/images_cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <mutex>

#include "images/digest.h"
#include "images/image_store.h"
#include "images/reference.h"

namespace kernelet::images {

namespace {

int report(const Error& e) {
  std::cerr << "kernelet images: " << e.message() << "\n";
  return 1;
}

std::string humanSize(int64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    u++;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.3g%s", v, units[u]);
  return buf;
}

void list(const std::vector<ImageRecord>& images) {
  std::printf("%-50s %-16s %-13s %s\n", "IMAGE", "TAG", "IMAGE ID", "SIZE");
  for (const auto& r : images) {
    auto ref = parseReference(r.name);
    std::string repo = ref ? ref->name() : r.name;
    std::string tag = ref && !ref->tag.empty() ? ref->tag : "<none>";
    std::printf("%-50s %-16s %-13s %s\n", repo.c_str(), tag.c_str(),
                digestHex(r.config_digest).substr(0, 13).c_str(), humanSize(r.size).c_str());
  }
}

}  // namespace

int imagesMain(int argc, char** argv) {
  CLI::App app{"pull, import, list, inspect and remove images", "kernelet images"};
  app.require_subcommand(1);
  std::string root_dir = "/var/lib/kernelet";
  app.add_option("--root-dir", root_dir, "the agent's state directory")->capture_default_str();
  std::string path, name, ref;
  auto* import = app.add_subcommand("import", "import an OCI image layout (directory or tar)");
  import->add_option("path", path, "the layout")->required();
  import->add_option("--name", name, "name the image (else its ref.name annotation)");
  auto* ls = app.add_subcommand("ls", "list images");
  auto* insp = app.add_subcommand("inspect", "print an image's record and config as JSON");
  insp->add_option("image", ref, "name or id")->required();
  auto* rm = app.add_subcommand("rm", "remove an image and the layers no other image uses");
  rm->add_option("image", ref, "name or id")->required();
  auto* pull = app.add_subcommand("pull", "pull an image from a registry");
  pull->add_option("image", ref, "reference")->required();
  RegistryOptions registry;
  pull->add_option("--registry-config", registry.docker_config,
                   "Docker config.json with registry credentials (default: ~/.docker/config.json "
                   "if it exists)");
  pull->add_option("--ca-file", registry.tls.ca_file, "PEM bundle to verify the registry with");
  pull->add_flag("--plain-http", registry.plain_http, "talk HTTP, not HTTPS, to the registry");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "kernelet images: " << e.what() << "\nRun 'kernelet images --help' for usage.\n";
    return 2;
  }
  auto store = ImageStore::open(root_dir + "/images");
  if (!store) {
    return report(store.error());
  }
  if (*pull) {
    if (registry.docker_config.empty()) {
      const char* home = std::getenv("HOME");
      std::string guess = std::string(home ? home : "/root") + "/.docker/config.json";
      if (::access(guess.c_str(), R_OK) == 0) {
        registry.docker_config = guess;
      }
    }
    // A progress line on a terminal, rewritten in place; nothing in a pipe.
    bool tty = ::isatty(2) != 0;
    std::mutex out;
    auto progress = [&](const std::string& what) {
      if (tty) {
        std::lock_guard lock(out);
        std::cerr << "\r\033[K" << what << std::flush;
      }
    };
    auto r = store->pull(ref, registry, progress);
    if (tty) {
      std::cerr << "\r\033[K";
    }
    if (!r) {
      return report(r.error());
    }
    std::cout << "pulled " << r->name << " " << r->manifest_digest << "\n";
    return 0;
  }
  if (*import) {
    auto r = store->importLayout(path, name);
    if (!r) {
      return report(r.error());
    }
    for (const auto& i : *r) {
      std::cout << "imported " << i.name << " " << i.manifest_digest << "\n";
    }
    return 0;
  }
  if (*ls) {
    auto r = store->list();
    if (!r) {
      return report(r.error());
    }
    list(*r);
    return 0;
  }
  auto r = store->find(ref);
  if (!r) {
    return report(r.error());
  }
  if (*insp) {
    auto json = store->inspectJson(*r);
    if (!json) {
      return report(json.error());
    }
    std::cout << *json;
    return 0;
  }
  auto removed = store->remove(ref);
  if (!removed) {
    return report(removed.error());
  }
  std::cout << "removed " << r->name << "\n";
  return 0;
}

}  // namespace kernelet::images
