#include "agent/gc/container_gc.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <iterator>

namespace kernelet::agent::gc {

namespace fs = std::filesystem;

namespace {

// Newest first, as the kubelet's byCreated; by run within a container (its
// runs are numbered in start order), by end time across containers.
void newestFirst(std::vector<DeadRun>& runs) {
  std::stable_sort(runs.begin(), runs.end(), [](const DeadRun& a, const DeadRun& b) {
    if (a.unit == b.unit) {
      return a.run > b.run;
    }
    return a.ended > b.ended;
  });
}

// Keeps the newest `keep` runs of each unit in `units`, moving the rest to `out`.
void enforcePerUnit(std::map<std::string, std::vector<DeadRun>>& units, int keep,
                    std::vector<DeadRun>& out) {
  for (auto& [unit, runs] : units) {
    newestFirst(runs);
    while (static_cast<int>(runs.size()) > keep) {
      out.push_back(std::move(runs.back()));
      runs.pop_back();
    }
  }
}

// "12" of "12.log" or "12.log.20261202-143000[.1]"; -1 for anything else.
int runOf(const std::string& name) {
  size_t dot = name.find(".log");
  if (dot == 0 || dot == std::string::npos || (name.size() > dot + 4 && name[dot + 4] != '.')) {
    return -1;
  }
  int n = -1;
  auto [end, ec] = std::from_chars(name.data(), name.data() + dot, n);
  if (ec != std::errc() || end != name.data() + dot || n < 0) {
    return -1;
  }
  return n;
}

}  // namespace

std::vector<DeadRun> runsToRemove(std::vector<DeadRun> dead, const ContainerGcPolicy& p,
                                  int64_t now) {
  std::map<std::string, std::vector<DeadRun>> units;
  for (auto& r : dead) {
    if (now - r.ended < p.min_age_seconds) {
      continue;  // dead too recently to be evictable
    }
    units[r.unit].push_back(std::move(r));
  }
  std::vector<DeadRun> out;
  if (p.max_per_pod_container >= 0) {
    enforcePerUnit(units, p.max_per_pod_container, out);
  }
  auto count = [&] {
    size_t n = 0;
    for (const auto& [unit, runs] : units) {
      n += runs.size();
    }
    return n;
  };
  if (p.max_containers >= 0 && count() > static_cast<size_t>(p.max_containers)) {
    // An equal share per container (at least 1), then the oldest on the node.
    int share = std::max(1, p.max_containers / std::max<int>(1, static_cast<int>(units.size())));
    enforcePerUnit(units, share, out);
    size_t total = count();
    if (total > static_cast<size_t>(p.max_containers)) {
      std::vector<DeadRun> flat;
      for (auto& [unit, runs] : units) {
        std::move(runs.begin(), runs.end(), std::back_inserter(flat));
      }
      std::stable_sort(flat.begin(), flat.end(),
                       [](const DeadRun& a, const DeadRun& b) { return a.ended > b.ended; });
      for (size_t i = static_cast<size_t>(p.max_containers); i < flat.size(); i++) {
        out.push_back(std::move(flat[i]));
      }
    }
  }
  return out;
}

std::map<int, std::vector<std::string>> runFiles(const std::string& dir) {
  std::map<int, std::vector<std::string>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename();
    int run = runOf(name);
    if (run >= 0 && e.is_regular_file(ec)) {
      out[run].push_back(e.path());
    }
  }
  for (auto& [run, files] : out) {
    std::sort(files.begin(), files.end());
  }
  return out;
}

std::vector<DeadRun> deadRuns(const std::vector<ContainerRuns>& containers) {
  std::vector<DeadRun> out;
  for (const auto& c : containers) {
    for (auto& [run, files] : runFiles(c.dir)) {
      if (run > c.latest || (run == c.latest && !c.latest_ended)) {
        continue;  // running, or being started
      }
      DeadRun d{.unit = c.dir, .run = run, .files = std::move(files)};
      for (const auto& f : d.files) {
        struct stat st {};
        if (::stat(f.c_str(), &st) == 0) {
          d.ended = std::max<int64_t>(d.ended, st.st_mtim.tv_sec);
        }
      }
      out.push_back(std::move(d));
    }
  }
  return out;
}

Removed removeRuns(const std::vector<DeadRun>& runs) {
  Removed r;
  for (const auto& run : runs) {
    for (const auto& f : run.files) {
      if (::unlink(f.c_str()) == 0) {
        r.files++;
      } else if (errno != ENOENT) {
        r.errors.push_back("remove `" + f + "`: " + std::strerror(errno));
      }
    }
    r.runs++;
  }
  return r;
}

Removed collectContainers(const std::vector<ContainerRuns>& containers, const ContainerGcPolicy& p,
                          int64_t now) {
  return removeRuns(runsToRemove(deadRuns(containers), p, now));
}

}  // namespace kernelet::agent::gc
