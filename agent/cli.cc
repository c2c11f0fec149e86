#include "agent/cli.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "agent/version.h"
#include "images/images_cli.h"
#include "isolation/oci_cli.h"

namespace kernelet::agent {
namespace {

constexpr int kUsageError = 2;

// A subcommand whose implementation has not landed yet: it is listed in --help
// so the command line's shape is fixed, and says plainly that it cannot run.
int notYet(const std::string& name, const std::string& issue) {
  std::cerr << "kernelet " << name << ": not implemented yet (tracked in " << issue << ")\n";
  return 1;
}

}  // namespace

int runCli(int argc, char** argv) {
  CLI::App app{"kernelet: a Kubernetes node agent that isolates containers itself", "kernelet"};
  app.set_version_flag("--version", std::string("kernelet version ") + KERNELET_VERSION);
  app.require_subcommand(0, 1);

  auto* run = app.add_subcommand("run", "run the node agent (kubelet)");
  run->allow_extras(false);
  auto* oci = app.add_subcommand("oci", "the OCI runtime interface (runc/crun arguments)");
  oci->prefix_command();
  oci->set_help_flag();  // `kernelet oci --help` is answered by the oci parser
  auto* images = app.add_subcommand("images", "pull, import, list, inspect and remove images");
  images->prefix_command();
  images->set_help_flag();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "kernelet: " << e.what() << "\nRun 'kernelet --help' for usage.\n";
    return kUsageError;
  }

  if (*run) {
    return notYet("run", "the standalone-agent issue");
  }
  // The rest of the line belongs to the subcommand, which has its own parser.
  auto forward = [](CLI::App* sub, const char* name, int (*main)(int, char**)) {
    std::vector<std::string> rest = sub->remaining();
    std::vector<char*> args = {const_cast<char*>(name)};
    for (auto& a : rest) {
      args.push_back(a.data());
    }
    return main(static_cast<int>(args.size()), args.data());
  };
  if (*oci) {
    return forward(oci, "oci", isolation::ociMain);
  }
  if (*images) {
    return forward(images, "images", images::imagesMain);
  }
  std::cout << app.help();
  return 0;
}

}  // namespace kernelet::agent
