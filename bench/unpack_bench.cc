// Layer unpack throughput: kernelet's unpacker (libarchive, one pass that also
// computes the diff_id) against `tar -xzf` of the same gzip layer, interleaved.
// Generates ~200 MiB of files once, then prints medians and the ratio.
//   unpack_bench [WORKDIR] [ROUNDS]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "images/unpack.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Files of mixed sizes whose content compresses about as well as binaries do.
void generate(const std::string& dir, uint64_t total) {
  std::mt19937_64 rng(42);
  std::vector<std::string> words;
  for (int i = 0; i < 4096; i++) {
    words.push_back(std::to_string(rng()) + (i % 7 == 0 ? "\n" : " "));
  }
  uint64_t written = 0;
  for (int d = 0; written < total; d++) {
    std::string sub = dir + "/d" + std::to_string(d);
    fs::create_directories(sub);
    for (int f = 0; f < 100 && written < total; f++) {
      size_t size = 1024 + rng() % (256 * 1024);
      std::string content;
      content.reserve(size);
      while (content.size() < size) {
        content += (rng() % 3 == 0) ? std::string(1, static_cast<char>(rng()))
                                    : words[rng() % words.size()];
      }
      std::ofstream(sub + "/f" + std::to_string(f)) << content;
      written += content.size();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string work = argc > 1 ? argv[1] : "/tmp/kernelet-unpack-bench";
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  fs::remove_all(work);
  fs::create_directories(work + "/src");
  generate(work + "/src", 200ull << 20);
  std::string layer = work + "/layer.tar.gz";
  if (std::system(("tar -C " + work + "/src -czf " + layer + " .").c_str()) != 0) {
    return 1;
  }
  std::vector<double> ours, tar;
  for (int i = 0; i < rounds; i++) {
    std::string a = work + "/ours" + std::to_string(i), b = work + "/tar" + std::to_string(i);
    fs::create_directories(a);
    fs::create_directories(b);
    ::sync();
    auto t0 = Clock::now();
    auto r = kernelet::images::unpackLayer(layer, a, "bench");
    auto t1 = Clock::now();
    if (!r) {
      std::cerr << r.error().message() << "\n";
      return 1;
    }
    if (std::system(("tar -C " + b + " -xzf " + layer).c_str()) != 0) {
      return 1;
    }
    auto t2 = Clock::now();
    ours.push_back(std::chrono::duration<double>(t1 - t0).count());
    tar.push_back(std::chrono::duration<double>(t2 - t1).count());
    fs::remove_all(a);
    fs::remove_all(b);
  }
  double mib = static_cast<double>(200);
  double o = median(ours), t = median(tar);
  std::printf("unpack of a %.0f MiB gzip layer, %d rounds, interleaved (median):\n", mib, rounds);
  std::printf("  %-28s %6.2f s  %6.1f MiB/s  %5.2fx tar\n", "kernelet unpack (+diff_id)", o,
              mib / o, o / t);
  std::printf("  %-28s %6.2f s  %6.1f MiB/s  %5.2fx tar\n", "tar -xzf", t, mib / t, 1.0);
  fs::remove_all(work);
  return 0;
}
