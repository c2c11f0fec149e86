#pragma once
// Pod addresses from the node's pod CIDR, persisted on disk as one file per
// address (like the host-local CNI plugin), so a restarted agent never hands out
// an address still in use. Creating a file with O_EXCL is the allocation.

#include <cstdint>
#include <string>

#include "sys/result.h"

namespace kernelet::netns {

struct Ipv4Cidr {
  uint32_t network = 0;  // host byte order
  int prefix = 0;

  static Result<Ipv4Cidr> parse(const std::string& text);
  uint32_t gateway() const { return network + 1; }  // the first address
  uint32_t broadcast() const { return network | (prefix == 32 ? 0 : (~0u >> prefix)); }
  std::string str() const;
};

std::string ipToString(uint32_t ip);

class Ipam {
 public:
  // Keeps its files in DIR (created if missing).
  static Result<Ipam> open(const std::string& dir, const Ipv4Cidr& cidr);

  // The pod's address: the one it already holds, or the next free one after
  // the last handed out. Exhaustion is an error naming the CIDR and the pod.
  Result<uint32_t> allocate(const std::string& owner);
  // Frees what `owner` holds; nothing held is fine.
  Result<void> release(const std::string& owner);
  // The address `owner` holds, or 0.
  uint32_t find(const std::string& owner) const;

 private:
  Ipam(std::string dir, Ipv4Cidr cidr) : dir_(std::move(dir)), cidr_(cidr) {}
  std::string dir_;
  Ipv4Cidr cidr_;
};

}  // namespace kernelet::netns
