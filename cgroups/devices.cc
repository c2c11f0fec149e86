// The device cgroup of v2: a BPF_PROG_TYPE_CGROUP_DEVICE program that the kernel
// runs on every open or mknod of a device node by a process of the group.
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "cgroups/cgroups.h"

namespace kernelet::cgroups {

std::vector<DeviceRule> defaultAllowedDevices() {
  // runc's specconv.AllowedDevices, in its order: what a containerd node
  // enforces (CRI's spec denies all, runc appends these). Not /dev/console
  // (5:1): runc dropped it in 1.0.0-rc95 (it opens the node's console; a
  // container's terminal is a pty, 136:*); crun and containerd's
  // WithDefaultUnixDevices (ctr, not CRI) still allow it.
  return {
      {true, 'c', -1, -1, "m"},     // mknod of any char device
      {true, 'b', -1, -1, "m"},     // mknod of any block device
      {true, 'c', 1, 3, "rwm"},     // /dev/null
      {true, 'c', 1, 8, "rwm"},     // /dev/random
      {true, 'c', 1, 7, "rwm"},     // /dev/full
      {true, 'c', 5, 0, "rwm"},     // /dev/tty
      {true, 'c', 1, 5, "rwm"},     // /dev/zero
      {true, 'c', 1, 9, "rwm"},     // /dev/urandom
      {true, 'c', 136, -1, "rwm"},  // /dev/pts/*
      {true, 'c', 5, 2, "rwm"},     // /dev/ptmx
      {true, 'c', 10, 200, "rwm"},  // /dev/net/tun
  };
}

std::vector<DeviceRule> allDevices() { return {{true, 'a', -1, -1, "rwm"}}; }

namespace {

// Just the instructions we need, spelled as the kernel's filter.h macros do.
bpf_insn ldxW(int dst, int src, int16_t off) {
  return {.code = BPF_LDX | BPF_W | BPF_MEM,
          .dst_reg = static_cast<uint8_t>(dst),
          .src_reg = static_cast<uint8_t>(src),
          .off = off,
          .imm = 0};
}
bpf_insn alu(uint8_t op, int dst, int32_t imm) {
  return {.code = static_cast<uint8_t>(BPF_ALU64 | op | BPF_K),
          .dst_reg = static_cast<uint8_t>(dst),
          .src_reg = 0,
          .off = 0,
          .imm = imm};
}
bpf_insn movReg(int dst, int src) {
  return {.code = BPF_ALU64 | BPF_MOV | BPF_X,
          .dst_reg = static_cast<uint8_t>(dst),
          .src_reg = static_cast<uint8_t>(src),
          .off = 0,
          .imm = 0};
}
bpf_insn jne(int dst, int32_t imm, int16_t off) {
  return {.code = BPF_JMP | BPF_JNE | BPF_K,
          .dst_reg = static_cast<uint8_t>(dst),
          .src_reg = 0,
          .off = off,
          .imm = imm};
}
bpf_insn exitInsn() {
  return {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0};
}

Result<uint32_t> accessBits(const std::string& access) {
  uint32_t bits = 0;
  for (char c : access) {
    switch (c) {
      case 'r':
        bits |= BPF_DEVCG_ACC_READ;
        break;
      case 'w':
        bits |= BPF_DEVCG_ACC_WRITE;
        break;
      case 'm':
        bits |= BPF_DEVCG_ACC_MKNOD;
        break;
      default:
        return makeError("device rule", access, "access must be made of r, w and m");
    }
  }
  return bits;
}

// r2 = device type, r3 = requested access, r4 = major, r5 = minor; then one
// block per rule, the last rule first, each returning its verdict on a match.
Result<std::vector<bpf_insn>> compile(const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> prog = {
      ldxW(2, 1, offsetof(bpf_cgroup_dev_ctx, access_type)),
      alu(BPF_AND, 2, 0xFFFF),
      ldxW(3, 1, offsetof(bpf_cgroup_dev_ctx, access_type)),
      alu(BPF_RSH, 3, 16),
      ldxW(4, 1, offsetof(bpf_cgroup_dev_ctx, major)),
      ldxW(5, 1, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    const DeviceRule& r = *it;
    TRY(uint32_t acc, accessBits(r.access));
    std::vector<bpf_insn> checks;
    if (r.type == 'c' || r.type == 'b') {
      checks.push_back(jne(2, r.type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0));
    } else if (r.type != 'a') {
      return makeError("device rule", std::string(1, r.type), "type must be a, c or b");
    }
    const uint32_t all = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;
    if ((acc & all) != all) {
      // Everything requested must be granted by the rule.
      checks.push_back(movReg(6, 3));
      checks.push_back(alu(BPF_AND, 6, static_cast<int32_t>(~acc & all)));
      checks.push_back(jne(6, 0, 0));
    }
    if (r.major >= 0) {
      checks.push_back(jne(4, static_cast<int32_t>(r.major), 0));
    }
    if (r.minor >= 0) {
      checks.push_back(jne(5, static_cast<int32_t>(r.minor), 0));
    }
    checks.push_back(alu(BPF_MOV, 0, r.allow ? 1 : 0));
    checks.push_back(exitInsn());
    // Every failed check jumps past this block's end.
    for (size_t i = 0; i < checks.size(); i++) {
      if ((checks[i].code & 0xF0) == BPF_JNE && (checks[i].code & 0x07) == BPF_JMP) {
        checks[i].off = static_cast<int16_t>(checks.size() - i - 1);
      }
    }
    prog.insert(prog.end(), checks.begin(), checks.end());
    if (checks.size() == 2) {
      // Matches everything: the rules before it can never decide, and the
      // verifier refuses unreachable instructions.
      return prog;
    }
  }
  prog.push_back(alu(BPF_MOV, 0, 0));
  prog.push_back(exitInsn());
  return prog;
}

long bpf(int cmd, bpf_attr& attr) { return ::syscall(SYS_bpf, cmd, &attr, sizeof attr); }

bpf_attr loadAttr(const std::vector<bpf_insn>& prog) {
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insn_cnt = static_cast<uint32_t>(prog.size());
  load.insns = reinterpret_cast<uint64_t>(prog.data());
  load.license = reinterpret_cast<uint64_t>("Apache");
  return load;
}

// Loaded without a verifier log: the kernel then cannot fail for a log that
// does not fit (with log_level 1 a 4 KiB buffer fails every program of more
// than a rule or two with ENOSPC on 6.1).
UniqueFd load(const std::vector<bpf_insn>& prog) {
  bpf_attr attr = loadAttr(prog);
  return UniqueFd(static_cast<int>(bpf(BPF_PROG_LOAD, attr)));
}

// Only once a load has failed: loads again with a log large enough for the
// verifier's trace of our largest programs, for its last line, which says why.
std::string verifierError(const std::vector<bpf_insn>& prog) {
  std::string log(1 << 20, '\0');
  bpf_attr attr = loadAttr(prog);
  attr.log_buf = reinterpret_cast<uint64_t>(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_level = 1;
  UniqueFd again(static_cast<int>(bpf(BPF_PROG_LOAD, attr)));
  if (size_t end = log.find('\0'); end != std::string::npos) {
    log.resize(end);
  }
  while (!log.empty() && log.back() == '\n') {
    log.pop_back();
  }
  return log.substr(log.rfind('\n') + 1);
}

}  // namespace

Result<void> Cgroup::applyDeviceRules(const std::vector<DeviceRule>& rules) {
  TRY(std::vector<bpf_insn> prog, compile(rules));
  UniqueFd prog_fd = load(prog);
  if (!prog_fd) {
    int errnum = errno;
    Error e{.errnum = errnum, .op = "load device filter", .path = path_};
    e.detail = verifierError(prog);
    return std::unexpected(std::move(e));
  }
  // bpf() does not take O_PATH descriptors: open the directory for reading.
  UniqueFd dir(::openat(dir_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    return sysError("open", path_);
  }
  // Attached without flags, a program replaces the group's previous one.
  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(dir.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog_fd.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  if (bpf(BPF_PROG_ATTACH, attach) != 0) {
    return sysError("attach device filter", path_);
  }
  return {};
}

}  // namespace kernelet::cgroups
