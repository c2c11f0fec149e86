#include "isolation/oci_cli.h"

#include <sys/epoll.h>
#include <sys/signalfd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <string_view>

#include "isolation/oci_container.h"
#include "sys/event_loop.h"
#include "sys/fileio.h"

namespace kernelet::isolation {

namespace {

int report(const Error& e) {
  std::cerr << "kernelet oci: " << e.message() << "\n";
  return 1;
}

Result<void> writePidFile(const std::string& path, pid_t pid) {
  if (path.empty()) {
    return {};
  }
  return writeFileAtomic(path, std::to_string(pid), 0644);
}

// `run`: create and start in one go, stay in the foreground, pass on the
// signals a terminal or a supervisor sends us, and exit with the container's
// status once it is gone and cleaned up (crun's contract).
Result<int> runForeground(const std::string& root, const std::string& id, const std::string& bundle,
                          const std::string& pid_file, oci::CreateOptions options) {
  sigset_t forward;
  sigemptyset(&forward);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) {
    sigaddset(&forward, sig);
  }
  // Blocked before the container exists, so none is lost; the container itself
  // starts with nothing blocked.
  ::sigprocmask(SIG_BLOCK, &forward, nullptr);
  UniqueFd sigfd(::signalfd(-1, &forward, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sigfd) {
    return sysError("signalfd");
  }
  options.wait_for_start = false;
  TRY(oci::Created c, oci::create(root, id, bundle, options));
  auto cleanup = [&]() { return oci::remove(root, id, /*force=*/true); };
  if (auto r = writePidFile(pid_file, c.process.pid()); !r) {
    (void)cleanup();
    return std::unexpected(r.error());
  }

  TRY(EventLoop loop, EventLoop::create());
  std::optional<Result<ExitStatus>> exit;
  TRY_VOID(loop.add(sigfd.get(), EPOLLIN, [&](uint32_t) {
    signalfd_siginfo info{};
    while (::read(sigfd.get(), &info, sizeof info) == sizeof info) {
      (void)c.process.signal(static_cast<int>(info.ssi_signo));
    }
  }));
  TRY_VOID(loop.add(c.process.pidfd(), EPOLLIN, [&](uint32_t) {
    exit = c.process.wait();
    loop.stop();
  }));
  TRY_VOID(loop.run());
  auto removed = cleanup();
  if (!exit) {
    return makeError("wait", id, "event loop ended before the container exited");
  }
  if (!*exit) {
    return std::unexpected(exit->error());
  }
  if (!removed) {
    report(removed.error());
  }
  return (*exit)->shellStatus();
}

}  // namespace

bool ociStartsContainer(int argc, char** argv) {
  // The subcommand is the first word that is neither an option nor the value
  // of --root (the only global option with a value).
  for (int i = 1; i < argc; i++) {
    std::string_view a = argv[i];
    if (a == "--root") {
      i++;
    } else if (!a.starts_with("-")) {
      return a == "run" || a == "create";
    }
  }
  return false;
}

int ociMain(int argc, char** argv) {
  CLI::App app{"the OCI runtime interface (runc and crun arguments)", "kernelet oci"};
  app.require_subcommand(1);
  std::string root = "/run/kernelet/oci";
  app.add_option("--root", root, "directory for container state")->capture_default_str();
  oci::CreateOptions options;
  app.add_flag("--limits-unenforced", options.limits_unenforced,
               "run without the limits whose cgroup v2 controller is missing, with a warning");

  std::string id, bundle = ".", pid_file, signal = "SIGTERM";
  bool force = false, all = false;
  auto bundleOpts = [&](CLI::App* sub) {
    sub->add_option("-b,--bundle", bundle, "the bundle directory (default: current directory)");
    sub->add_option("--pid-file", pid_file, "write the container's pid to this file");
    sub->add_option("--console-socket", options.console_socket,
                    "with process.terminal: the AF_UNIX socket to send the pty master to");
    sub->add_option("id", id, "container id")->required();
  };
  auto* run = app.add_subcommand("run", "create and start a container, wait for it to exit");
  bundleOpts(run);
  auto* create = app.add_subcommand("create", "create a container, stopped before its command");
  bundleOpts(create);
  auto* start = app.add_subcommand("start", "start the command of a created container");
  start->add_option("id", id, "container id")->required();
  auto* state = app.add_subcommand("state", "print the state of a container as JSON");
  state->add_option("id", id, "container id")->required();
  auto* kill = app.add_subcommand("kill", "send a signal to a container (default SIGTERM)");
  kill->add_option("id", id, "container id")->required();
  kill->add_option("signal", signal, "signal name or number");
  kill->add_flag("-a,--all", all, "signal every process of the container, not only its init");
  auto* del = app.add_subcommand("delete", "delete a stopped container");
  del->add_option("id", id, "container id")->required();
  del->add_flag("-f,--force", force, "kill it first if it is still running");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "kernelet oci: " << e.what() << "\nRun 'kernelet oci --help' for usage.\n";
    return 2;
  }

  if (*run) {
    auto status = runForeground(root, id, bundle, pid_file, options);
    return status ? *status : report(status.error());
  }
  Result<void> r;
  if (*create) {
    options.wait_for_start = true;
    auto c = oci::create(root, id, bundle, options);
    r = c ? writePidFile(pid_file, c->process.pid()) : std::unexpected(c.error());
  } else if (*start) {
    r = oci::start(root, id);
  } else if (*state) {
    auto s = oci::state(root, id);
    if (s) {
      std::cout << s->toJson(root + "/" + id);
    }
    r = s ? Result<void>{} : std::unexpected(s.error());
  } else if (*kill) {
    auto sig = oci::parseSignal(signal);
    r = sig ? oci::kill(root, id, *sig, all) : std::unexpected(sig.error());
  } else if (*del) {
    r = oci::remove(root, id, force);
  }
  return r ? 0 : report(r.error());
}

}  // namespace kernelet::isolation
