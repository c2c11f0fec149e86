#include "netns/ipam.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "sys/fileio.h"
#include "sys/unique_fd.h"

namespace kernelet::netns {

namespace fs = std::filesystem;

std::string ipToString(uint32_t ip) {
  in_addr a{htonl(ip)};
  char buf[INET_ADDRSTRLEN];
  return ::inet_ntop(AF_INET, &a, buf, sizeof buf);
}

Result<Ipv4Cidr> Ipv4Cidr::parse(const std::string& text) {
  size_t slash = text.find('/');
  in_addr a{};
  if (slash == std::string::npos || ::inet_pton(AF_INET, text.substr(0, slash).c_str(), &a) != 1) {
    return makeError("parse pod CIDR", text, "expected an IPv4 CIDR like 10.88.0.0/16");
  }
  int prefix = -1;
  try {
    size_t used = 0;
    prefix = std::stoi(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) {
      prefix = -1;
    }
  } catch (...) {
  }
  // A /31 or /32 leaves no address beside the gateway and the broadcast.
  if (prefix < 8 || prefix > 30) {
    return makeError("parse pod CIDR", text, "the prefix must be between /8 and /30");
  }
  Ipv4Cidr c;
  c.prefix = prefix;
  uint32_t mask = ~0u << (32 - prefix);
  c.network = ntohl(a.s_addr) & mask;
  return c;
}

std::string Ipv4Cidr::str() const { return ipToString(network) + "/" + std::to_string(prefix); }

Result<Ipam> Ipam::open(const std::string& dir, const Ipv4Cidr& cidr) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return makeError("create IPAM directory", dir, ec.message());
  }
  return Ipam(dir, cidr);
}

uint32_t Ipam::find(const std::string& owner) const {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename();
    in_addr a{};
    if (::inet_pton(AF_INET, name.c_str(), &a) != 1) {
      continue;
    }
    auto held = readFile(e.path());
    if (held && *held == owner) {
      return ntohl(a.s_addr);
    }
  }
  return 0;
}

Result<uint32_t> Ipam::allocate(const std::string& owner) {
  if (uint32_t held = find(owner); held != 0) {
    return held;
  }
  uint32_t first = cidr_.gateway() + 1;
  uint32_t last = cidr_.broadcast() - 1;
  // Start after the last address handed out, so a just-released address is not
  // reused at once (a late packet for the old pod must not reach a new one).
  uint32_t start = first;
  if (auto prev = readFile(dir_ + "/last_reserved_ip")) {
    in_addr a{};
    if (::inet_pton(AF_INET, prev->c_str(), &a) == 1) {
      uint32_t p = ntohl(a.s_addr);
      start = p >= first && p < last ? p + 1 : first;
    }
  }
  uint64_t size = static_cast<uint64_t>(last) - first + 1;
  for (uint64_t i = 0; i < size; i++) {
    uint32_t ip = first + static_cast<uint32_t>((start - first + i) % size);
    std::string path = dir_ + "/" + ipToString(ip);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
      if (errno == EEXIST) {
        continue;
      }
      return sysError("reserve address", path);
    }
    if (::write(fd.get(), owner.data(), owner.size()) != static_cast<ssize_t>(owner.size()) ||
        ::fsync(fd.get()) != 0) {
      auto err = sysError("write", path);
      ::unlink(path.c_str());
      return err;
    }
    TRY_VOID(writeFileAtomic(dir_ + "/last_reserved_ip", ipToString(ip)));
    return ip;
  }
  return makeError(
      "allocate pod address", owner,
      "pod CIDR " + cidr_.str() + " is exhausted (" + std::to_string(size) + " addresses in use)");
}

Result<void> Ipam::release(const std::string& owner) {
  uint32_t ip = find(owner);
  if (ip == 0) {
    return {};
  }
  std::string path = dir_ + "/" + ipToString(ip);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return sysError("release address", path);
  }
  return {};
}

}  // namespace kernelet::netns
