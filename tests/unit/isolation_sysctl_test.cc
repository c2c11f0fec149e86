// Which sysctls a container may set: runc's and crun's rules.
#include <gtest/gtest.h>

#include <vector>

#include "isolation/sysctl.h"

namespace kernelet::isolation {
namespace {

std::string refusal(const std::string& name, bool net, bool uts, bool ipc) {
  auto r = validateSysctl(name, net, uts, ipc);
  return r ? "" : r.error().message();
}

TEST(Sysctl, NamespacedOnesNeedTheirPrivateNamespace) {
  for (const char* ipc :
       {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
        "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", "fs.mqueue.msg_max"}) {
    EXPECT_EQ(refusal(ipc, false, false, true), "") << ipc;
    EXPECT_EQ(refusal(ipc, true, true, false),
              "sysctl `" + std::string(ipc) + "`: needs a private IPC namespace");
  }
  EXPECT_EQ(refusal("net.ipv4.ip_forward", true, false, false), "");
  EXPECT_EQ(refusal("net.ipv4.ip_forward", false, true, true),
            "sysctl `net.ipv4.ip_forward`: needs a private network namespace");
  EXPECT_EQ(refusal("kernel.domainname", false, true, false), "");
  EXPECT_EQ(refusal("kernel.hostname", true, false, true),
            "sysctl `kernel.hostname`: needs a private UTS namespace");
}

TEST(Sysctl, HostWideOnesAreRefusedWhateverTheNamespaces) {
  for (const char* name :
       {"kernel.core_pattern", "kernel.modprobe", "vm.overcommit_memory", "fs.file-max",
        "kernel.msgmax_extra", "kernel.shm_next_id", "kernel", "net"}) {
    EXPECT_EQ(refusal(name, true, true, true),
              "sysctl `" + std::string(name) + "`: not a namespaced sysctl");
  }
}

TEST(Sysctl, NamesThatAreNotPlainDottedPathsAreRefused) {
  for (const std::string& name : std::vector<std::string>{
           "net.ipv4/../../kernel/core_pattern", "net..ipv4", ".net.ipv4", "net.ipv4.",
           std::string("net.ipv4\0x", 10), "net/ipv4/ip_forward"}) {
    EXPECT_EQ(refusal(name, true, true, true), "sysctl `" + name + "`: not a valid sysctl name");
  }
}

}  // namespace
}  // namespace kernelet::isolation
