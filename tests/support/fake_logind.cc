#include "support/fake_logind.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kernelet::testing {

PrivateBus::PrivateBus() {
  char tmpl[] = "/tmp/kernelet-bus-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  std::ofstream(dir_ + "/bus.conf")
      << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
         " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
         "<busconfig>\n  <type>custom</type>\n  <listen>unix:path="
      << dir_ << "/bus</listen>\n  <auth>EXTERNAL</auth>\n"
      << "  <policy context=\"default\">\n    <allow user=\"*\"/>\n    <allow own=\"*\"/>\n"
         "    <allow send_destination=\"*\"/>\n    <allow receive_sender=\"*\"/>\n"
         "  </policy>\n</busconfig>\n";
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    error_ = "pipe2 failed";
    return;
  }
  std::string conf = "--config-file=" + dir_ + "/bus.conf";
  std::string print = "--print-address=" + std::to_string(p[1]);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::fcntl(p[1], F_SETFD, 0);  // the daemon writes its address here
    ::execlp("dbus-daemon", "dbus-daemon", "--nofork", "--nopidfile", conf.c_str(), print.c_str(),
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(p[1]);
  // The address line is the daemon's word that it listens: no polling for the socket.
  std::string line;
  char c = 0;
  pollfd pf{p[0], POLLIN, 0};
  while (::poll(&pf, 1, 10000) == 1 && ::read(p[0], &c, 1) == 1 && c != '\n') {
    line += c;
  }
  ::close(p[0]);
  if (line.empty()) {
    error_ =
        "dbus-daemon did not start (is it installed? scripts/install-deps installs dbus-daemon)";
    return;
  }
  address_ = line;
}

PrivateBus::~PrivateBus() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

struct FakeLogind::State {
  std::string address, conf_dir;
  bool reload_works = true;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool ready = false, stop = false;
  std::string error;
  uint64_t delay_usec = 0;
  std::vector<InhibitCall> inhibits;
  std::vector<UniqueFd> lock_reads;
  std::vector<bool> emits;
  int kill_units = 0;
};

namespace {

using State = FakeLogind::State;

int onInhibit(sd_bus_message* m, void* userdata, sd_bus_error* /*err*/) {
  auto* s = static_cast<State*>(userdata);
  const char *what = nullptr, *who = nullptr, *why = nullptr, *mode = nullptr;
  int r = sd_bus_message_read(m, "ssss", &what, &who, &why, &mode);
  if (r < 0) {
    return r;
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return -errno;
  }
  {
    std::lock_guard lock(s->mu);
    s->inhibits.push_back({what, who, why, mode});
    s->lock_reads.emplace_back(p[0]);
  }
  r = sd_bus_reply_method_return(m, "h", p[1]);  // sd-bus sends a copy
  ::close(p[1]);
  return r;
}

int getDelay(sd_bus* /*bus*/, const char* /*path*/, const char* /*interface*/,
             const char* /*property*/, sd_bus_message* reply, void* userdata,
             sd_bus_error* /*err*/) {
  auto* s = static_cast<State*>(userdata);
  std::lock_guard lock(s->mu);
  return sd_bus_message_append(reply, "t", s->delay_usec);
}

// systemd's KillUnit(systemd-logind.service, all, SIGHUP): logind rereads its
// drop-ins; the fake reads InhibitDelayMaxSec from the one in conf_dir.
int onKillUnit(sd_bus_message* m, void* userdata, sd_bus_error* /*err*/) {
  auto* s = static_cast<State*>(userdata);
  const char *unit = nullptr, *who = nullptr;
  int32_t sig = 0;
  int r = sd_bus_message_read(m, "ssi", &unit, &who, &sig);
  if (r < 0) {
    return r;
  }
  std::lock_guard lock(s->mu);
  s->kill_units++;
  if (s->reload_works && std::string(unit) == "systemd-logind.service" && sig == SIGHUP) {
    std::ifstream in(s->conf_dir + "/99-kernelet.conf");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("InhibitDelayMaxSec=", 0) == 0) {
        s->delay_usec = std::stoull(line.substr(19)) * 1000000;
      }
    }
  }
  return sd_bus_reply_method_return(m, "");
}

const sd_bus_vtable kLogind[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Inhibit", "ssss", "h", onInhibit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_PROPERTY("InhibitDelayMaxUSec", "t", getDelay, 0, 0),
    SD_BUS_SIGNAL("PrepareForShutdown", "b", 0), SD_BUS_VTABLE_END};

const sd_bus_vtable kSystemd[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("KillUnit", "ssi", "", onKillUnit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END};

}  // namespace

FakeLogind::FakeLogind(const std::string& address, uint64_t inhibit_delay_max_usec,
                       const std::string& conf_dir, bool reload_works)
    : state_(std::make_unique<State>()) {
  state_->address = address;
  state_->conf_dir = conf_dir;
  state_->reload_works = reload_works;
  state_->delay_usec = inhibit_delay_max_usec;
  thread_ = std::thread([this] { serve(); });
  std::unique_lock lock(state_->mu);
  state_->cv.wait(lock, [this] { return state_->ready; });
}

FakeLogind::~FakeLogind() {
  {
    std::lock_guard lock(state_->mu);
    state_->stop = true;
  }
  thread_.join();
}

void FakeLogind::serve() {
  State& s = *state_;
  sd_bus* bus = nullptr;
  sd_bus_slot* slots[2] = {nullptr, nullptr};
  auto fail = [&](const char* what, int r) {
    std::lock_guard lock(s.mu);
    s.error = std::string(what) + ": " + std::strerror(-r);
    s.ready = true;
    s.cv.notify_all();
  };
  int r = sd_bus_new(&bus);
  for (auto step :
       {+[](sd_bus*b, State&st) { return sd_bus_set_address(b, st.address.c_str()); },
        +[](sd_bus*b, State&) { return sd_bus_set_bus_client(b, 1); },
        +[](sd_bus*b, State&) { return sd_bus_negotiate_fds(b, 1); },
        +[](sd_bus*b, State&) { return sd_bus_start(b); },
        +[](sd_bus*b, State&) { return sd_bus_request_name(b, "org.freedesktop.login1", 0); },
        +[](sd_bus*b, State&) { return sd_bus_request_name(b, "org.freedesktop.systemd1", 0); }}) {
    if (r >= 0) {
      r = step(bus, s);
    }
  }
  if (r >= 0) {
    r = sd_bus_add_object_vtable(bus, &slots[0], "/org/freedesktop/login1",
                                 "org.freedesktop.login1.Manager", kLogind, &s);
  }
  if (r >= 0) {
    r = sd_bus_add_object_vtable(bus, &slots[1], "/org/freedesktop/systemd1",
                                 "org.freedesktop.systemd1.Manager", kSystemd, &s);
  }
  if (r < 0) {
    fail("serve a fake logind with sd-bus", r);
    sd_bus_flush_close_unref(bus);
    return;
  }
  {
    std::lock_guard lock(s.mu);
    s.ready = true;
    s.cv.notify_all();
  }
  while (true) {
    std::vector<bool> emits;
    {
      std::lock_guard lock(s.mu);
      if (s.stop) {
        break;
      }
      emits.swap(s.emits);
    }
    for (bool active : emits) {
      int a = active ? 1 : 0;
      (void)sd_bus_emit_signal(bus, "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                               "PrepareForShutdown", "b", a);
    }
    if (sd_bus_process(bus, nullptr) > 0) {
      continue;
    }
    // Woken by the bus; a short bound so a queued emit or stop is seen soon.
    (void)sd_bus_wait(bus, 20000);
  }
  sd_bus_slot_unref(slots[0]);
  sd_bus_slot_unref(slots[1]);
  sd_bus_flush_close_unref(bus);
}

std::string FakeLogind::error() const {
  std::lock_guard lock(state_->mu);
  return state_->error;
}

void FakeLogind::emitPrepareForShutdown(bool active) {
  std::lock_guard lock(state_->mu);
  state_->emits.push_back(active);
}

std::vector<InhibitCall> FakeLogind::inhibits() const {
  std::lock_guard lock(state_->mu);
  return state_->inhibits;
}

int FakeLogind::killUnitCalls() const {
  std::lock_guard lock(state_->mu);
  return state_->kill_units;
}

uint64_t FakeLogind::inhibitDelayMax() const {
  std::lock_guard lock(state_->mu);
  return state_->delay_usec;
}

int FakeLogind::locksHeld() const {
  std::lock_guard lock(state_->mu);
  int held = 0;
  for (const UniqueFd& fd : state_->lock_reads) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) {
      held++;  // no POLLHUP: a copy of the write end is still open
    }
  }
  return held;
}

bool FakeLogind::waitForLocks(int n, std::chrono::milliseconds timeout) const {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (locksHeld() != n) {
    if (std::chrono::steady_clock::now() > end) {
      return false;
    }
    // The lock's release is another process's (or thread's) close: wait on
    // the read ends themselves.
    std::vector<pollfd> fds;
    {
      std::lock_guard lock(state_->mu);
      for (const UniqueFd& fd : state_->lock_reads) {
        pollfd p{fd.get(), POLLIN, 0};
        if (::poll(&p, 1, 0) == 0) {
          fds.push_back(p);  // still held: its release ends the wait
        }
      }
    }
    // With none held, waiting for more to be taken: a short bound.
    ::poll(fds.data(), fds.size(), 50);
  }
  return true;
}

}  // namespace kernelet::testing
