#include "isolation/oci_container.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cgroups/cgroups.h"
#include "isolation/oci_config.h"
#include "isolation/terminal.h"
#include "sys/fileio.h"
#include "sys/syscalls.h"

namespace kernelet::isolation::oci {

namespace {

Result<void> validId(const std::string& id) {
  if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos ||
      id.size() > 1024) {
    return makeError("container id", id, "must be a non-empty name without '/'");
  }
  return {};
}

std::string nowRfc3339() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  tm utc{};
  ::gmtime_r(&t.tv_sec, &utc);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%09ldZ", t.tv_nsec);
  return std::string(buf) + frac;
}

// The controllers the limits need: only those must be there.
std::vector<std::string> neededControllers(const cgroups::Limits& l) {
  std::vector<std::string> out;
  if (l.cpu_weight || l.cpu_max) {
    out.push_back("cpu");
  }
  if (l.memory_max || l.memory_min || l.memory_low || l.memory_high || l.memory_swap_max) {
    out.push_back("memory");
  }
  if (l.pids_max) {
    out.push_back("pids");
  }
  return out;
}

// Forgets the limits whose controller the hierarchy does not offer.
void dropUnavailable(cgroups::Limits& l, const cgroups::Hierarchy& h) {
  if (!h.controllers.contains("cpu")) {
    l.cpu_weight.reset();
    l.cpu_max.reset();
  }
  if (!h.controllers.contains("memory")) {
    l.memory_max.reset();
    l.memory_min.reset();
    l.memory_low.reset();
    l.memory_high.reset();
    l.memory_swap_max.reset();
  }
  if (!h.controllers.contains("pids")) {
    l.pids_max.reset();
  }
}

// Creates the group and every missing ancestor, each delegating the needed
// controllers to the next.
Result<cgroups::Cgroup> makeGroup(const cgroups::Hierarchy& h, const std::string& relative,
                                  const std::vector<std::string>& controllers) {
  std::string walked;
  if (!controllers.empty()) {
    TRY(cgroups::Cgroup top, cgroups::Cgroup::open(h.mount, ""));
    TRY_VOID(top.enableControllers(controllers));
  }
  std::vector<std::string> parts;
  for (const auto& p : std::filesystem::path(relative)) {
    if (!p.empty() && p != "/") {
      parts.push_back(p);
    }
  }
  for (size_t i = 0; i < parts.size(); i++) {
    walked += (walked.empty() ? "" : "/") + parts[i];
    TRY(cgroups::Cgroup g, cgroups::Cgroup::create(h.mount, walked));
    if (i + 1 < parts.size() && !controllers.empty()) {
      TRY_VOID(g.enableControllers(controllers));
    }
    if (i + 1 == parts.size()) {
      return g;
    }
  }
  return makeError("cgroup path", relative, "empty");
}

// Removes what create() made, collecting cleanup failures beside `e`.
Error undo(Error e, cgroups::Cgroup* group, const std::string& dir) {
  if (group != nullptr) {
    if (auto r = group->remove(); !r) {
      e.cleanup.push_back(r.error().message());
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) {
    e.cleanup.push_back("remove `" + dir + "`: " + ec.message());
  }
  return e;
}

}  // namespace

Result<Created> create(const std::string& root, const std::string& id, const std::string& bundle,
                       const CreateOptions& options) {
  TRY_VOID(validId(id));
  TRY(OciBundle b, loadOciBundle(bundle));
  TRY(cgroups::Hierarchy h, cgroups::detect());
  std::vector<std::string> controllers = neededControllers(b.limits);
  if (auto ok = cgroups::requireControllers(h, controllers); !ok) {
    if (!options.limits_unenforced) {
      return std::unexpected(withContext(ok.error(), "container " + id));
    }
    std::string offered;
    for (const auto& c : h.controllers) {
      offered += " " + c;
    }
    std::cerr << "kernelet oci: warning: container " << id
              << ": cpu/memory/pids limits NOT enforced: the cgroup v2 hierarchy at " << h.mount
              << " offers only:" << (offered.empty() ? " nothing" : offered) << "\n";
    dropUnavailable(b.limits, h);
    controllers = neededControllers(b.limits);
  }

  // Connected before anything is made: a wrong path leaves nothing behind.
  // The child sends the master before create (or run) returns; our end then
  // closes with this frame.
  UniqueFd console;
  if (b.spec.terminal != !options.console_socket.empty()) {
    return makeError("create container", id,
                     b.spec.terminal ? std::string("use --console-socket with ") +
                                           (options.wait_for_start ? "create" : "run") +
                                           " when a terminal is used"
                                     : "--console-socket is given but process.terminal is false");
  }
  if (b.spec.terminal) {
    TRY(console, connectConsoleSocket(options.console_socket));
    b.spec.console_socket_fd = console.get();
  }

  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  std::string dir = root + "/" + id;
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) {
      return makeError("create container", id, "a container with this id exists in " + root);
    }
    return sysError("mkdir", dir);
  }

  std::string relative = b.cgroups_path.empty() ? "kernelet-oci/" + id : b.cgroups_path;
  auto group = makeGroup(h, relative, controllers);
  if (!group) {
    return std::unexpected(undo(group.error(), nullptr, dir));
  }
  auto setup = [&]() -> Result<Process> {
    TRY_VOID(group->apply(b.limits));
    for (const auto& [file, value] : b.unified) {
      TRY_VOID(group->write(file, value));
    }
    std::vector<cgroups::DeviceRule> rules = b.devices;
    for (const auto& d : cgroups::defaultAllowedDevices()) {
      rules.push_back(d);
    }
    // A device filter needs no controller (it attaches to any v2 group, also on
    // a hybrid host), so --limits-unenforced is no reason to run without it.
    TRY_VOID(group->applyDeviceRules(rules));
    b.spec.cgroup_fd = group->fd();
    if (options.wait_for_start) {
      b.spec.start_fifo = dir + "/exec.fifo";
      if (::mkfifo(b.spec.start_fifo.c_str(), 0600) != 0) {
        return sysError("mkfifo", b.spec.start_fifo);
      }
      // Writable by the container's user, whom the init is by the time it
      // opens the FIFO (through its O_PATH fd: the 0700 directory keeps
      // everyone else away), as runc's 0622; chmod, past the umask.
      if (::chmod(b.spec.start_fifo.c_str(), 0622) != 0) {
        return sysError("chmod", b.spec.start_fifo);
      }
    }
    return isolation::start(b.spec);
  };
  auto proc = setup();
  if (!proc) {
    return std::unexpected(undo(proc.error(), &*group, dir));
  }
  Created c{std::move(*proc), {}, dir};
  c.state = OciState{.oci_version = b.oci_version,
                     .id = id,
                     .bundle = b.dir,
                     .rootfs = b.spec.rootfs,
                     .pid = c.process.pid(),
                     .start_time = processStartTime(c.process.pid()),
                     .cgroup = group->path(),
                     .created = nowRfc3339(),
                     .annotations = b.annotations};
  if (auto r = saveState(dir, c.state); !r) {
    (void)c.process.signal(SIGKILL);
    (void)c.process.wait();
    return std::unexpected(undo(r.error(), &*group, dir));
  }
  return c;
}

Result<OciState> state(const std::string& root, const std::string& id) {
  TRY_VOID(validId(id));
  std::string dir = root + "/" + id;
  if (::access(dir.c_str(), F_OK) != 0) {
    return makeError("container", id, "does not exist");
  }
  return loadState(dir);
}

Result<void> start(const std::string& root, const std::string& id) {
  TRY(OciState s, state(root, id));
  std::string dir = root + "/" + id;
  std::string st = s.status(dir);
  if (st != "created") {
    return makeError("start container", id, "cannot start a container that is " + st);
  }
  // Opening the FIFO for reading releases the container's open for writing.
  std::string fifo = dir + "/exec.fifo";
  UniqueFd fd(::open(fifo.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return sysError("open", fifo);
  }
  char c;
  if (::read(fd.get(), &c, 1) != 1) {
    return makeError("start container", id, "the container exited before it could start");
  }
  ::unlink(fifo.c_str());
  return {};
}

Result<void> kill(const std::string& root, const std::string& id, int signal, bool all) {
  TRY(OciState s, state(root, id));
  if (s.status(root + "/" + id) == "stopped") {
    return makeError("kill container", id, "the container is not running");
  }
  if (all) {
    TRY(std::string procs, readFile(s.cgroup + "/cgroup.procs"));
    std::istringstream in(procs);
    for (pid_t p; in >> p;) {
      if (::kill(p, signal) != 0 && errno != ESRCH) {
        return sysError("kill", "pid " + std::to_string(p));
      }
    }
    return {};
  }
  UniqueFd pidfd(sys::pidfdOpen(s.pid));
  // The pid could have been reused between the check and the open: check again.
  if (!pidfd || processStartTime(s.pid) != s.start_time) {
    return makeError("kill container", id, "the container is not running");
  }
  if (sys::pidfdSendSignal(pidfd.get(), signal) != 0) {
    return sysError("kill", id);
  }
  return {};
}

Result<void> remove(const std::string& root, const std::string& id, bool force) {
  TRY(OciState s, state(root, id));
  std::string dir = root + "/" + id;
  std::string st = s.status(dir);
  if (st != "stopped" && !force) {
    return makeError("delete container", id,
                     "cannot delete a container that is " + st + " (use --force)");
  }
  // remove() kills whatever is left in the group (cgroup.kill) before rmdir.
  if (!s.cgroup.empty() && ::access(s.cgroup.c_str(), F_OK) == 0) {
    auto h = cgroups::detect();
    if (h) {
      TRY(cgroups::Cgroup g, cgroups::Cgroup::open(h->mount, s.cgroup.substr(h->mount.size() + 1)));
      TRY_VOID(g.remove());
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) {
    return makeError("remove", dir, ec.message());
  }
  return {};
}

Result<int> parseSignal(const std::string& text) {
  if (!text.empty() && std::isdigit(static_cast<unsigned char>(text[0]))) {
    int n = std::atoi(text.c_str());
    if (n > 0 && n < NSIG) {
      return n;
    }
  } else {
    std::string name = text.starts_with("SIG") ? text.substr(3) : text;
    for (int sig = 1; sig < NSIG; sig++) {
      const char* abbrev = ::sigabbrev_np(sig);
      if (abbrev != nullptr && name == abbrev) {
        return sig;
      }
    }
  }
  return makeError("parse signal", text, "unknown signal");
}

}  // namespace kernelet::isolation::oci
