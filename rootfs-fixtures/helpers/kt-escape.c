// kt-escape: attacks the escape test suite runs from inside a container, each
// printing one verdict line "NAME: ok" (the attack worked) or "NAME: <strerror>
// errno=N" (it was refused), so the test reads what a user would see.
//   key-add DESC DATA       add a "user" key to the session keyring
//   key-read DESC [SERIAL]  find DESC through the session keyring and read it;
//                           read the key SERIAL directly
//   clone3-userns           clone3(CLONE_NEWUSER|CLONE_NEWNS), then mount a tmpfs
//                           in the child; the same with clone(2)
//   hunt SECONDS            watch /proc for processes that are not this one (the
//                           agent's exec and probe children) and try to read their
//                           memory and environment, open their exe for writing
//                           and ptrace them
//                           before they exec (or get a handle on the agent's
//                           binary); prints "ESCAPE ..." for each success
//                           and a summary line "hunt: ..."
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int verdict(const char* name, long rc) {
  if (rc < 0) {
    int err = errno;
    printf("%s: %s errno=%d\n", name, strerror(err), err);
    return 1;
  }
  printf("%s: ok\n", name);
  return 0;
}

static int keyAdd(const char* desc, const char* data) {
  long serial = syscall(SYS_add_key, "user", desc, data, strlen(data), KEY_SPEC_SESSION_KEYRING);
  char name[256];
  snprintf(name, sizeof name, "key-add %s", desc);
  return verdict(name, serial);
}

// Reads a key's payload; prints it on success.
static int readKey(const char* name, long serial) {
  char buf[256];
  long n = syscall(SYS_keyctl, KEYCTL_READ, serial, buf, sizeof buf - 1);
  if (n < 0) {
    return verdict(name, -1);
  }
  buf[n < (long)sizeof buf - 1 ? n : (long)sizeof buf - 1] = '\0';
  printf("%s: ok data=%s\n", name, buf);
  return 0;
}

static int keyRead(const char* desc, const char* serial_text) {
  int failed = 0;
  char name[256];
  snprintf(name, sizeof name, "key-search %s", desc);
  long serial = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", desc, 0);
  failed += serial < 0 ? verdict(name, -1) : readKey(name, serial);
  if (serial_text != NULL) {
    snprintf(name, sizeof name, "key-read-serial %s", serial_text);
    failed += readKey(name, strtol(serial_text, NULL, 10));
  }
  return failed;
}

// The child of a clone with new user and mount namespaces: root there, it may
// mount a tmpfs if the kernel let the namespaces be made.
static int mountInChild(void) { return mount("none", "/tmp", "tmpfs", 0, NULL) == 0 ? 0 : errno; }

static int reportChild(const char* name, long pid) {
  if (pid < 0) {
    return verdict(name, -1);
  }
  int status = 0;
  waitpid((pid_t)pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    int err = WEXITSTATUS(status);
    printf("%s: made, but mount in them: %s errno=%d\n", name, strerror(err), err);
    return 1;
  }
  return verdict(name, 0);
}

static int cloneUserns(void) {
  int failed = 0;
  struct clone_args args = {.flags = CLONE_NEWUSER | CLONE_NEWNS, .exit_signal = SIGCHLD};
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) {
    _exit(mountInChild());
  }
  failed += reportChild("clone3-userns", pid);
  // What libc does when clone3 says ENOSYS.
  pid = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) {
    _exit(mountInChild());
  }
  failed += reportChild("clone-userns", pid);
  return failed;
}

// ---- hunt ----

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

enum State { kGone, kHidden, kForeign, kOurs };

// What /proc/PID/exe says: gone, hidden (the kernel refuses us: a process with
// more capabilities than ours, or not dumpable), foreign (a binary that is not
// in this container's filesystem: the agent before its exec) or ours.
static enum State classify(pid_t pid, char* exe, size_t size) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/exe", pid);
  ssize_t n = readlink(path, exe, size - 1);
  if (n < 0) {
    return errno == ENOENT || errno == ESRCH ? kGone : kHidden;
  }
  exe[n] = '\0';
  return access(exe, F_OK) == 0 ? kOurs : kForeign;
}

// The start of the first mapping of `exe` in the process (its ELF header).
static uintptr_t exeMapping(pid_t pid, const char* exe) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE* f = fopen(path, "re");
  if (f == NULL) {
    return 0;
  }
  uintptr_t start = 0;
  size_t len = strlen(exe);
  while (start == 0 && fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    size_t l = strlen(line);
    if (l >= len && strcmp(line + l - len, exe) == 0) {
      start = (uintptr_t)strtoull(line, NULL, 16);
    }
  }
  fclose(f);
  return start;
}

static int g_escapes;

static void escape(const char* how, pid_t pid, const char* exe, const unsigned char* bytes,
                   long n) {
  // The first few say what happened; the count says how often.
  if (++g_escapes > 20) {
    return;
  }
  printf("ESCAPE %s pid=%d exe=%s", how, pid, exe);
  if (n > 0) {
    printf(" read=");
    for (long i = 0; i < n; i++) {
      printf("%02x", bytes[i]);
    }
  }
  printf("\n");
  fflush(stdout);
}

// One round of every attack on a process that is not ours.
static void attack(pid_t pid) {
  char path[64], exe[512];
  unsigned char buf[4];
  snprintf(path, sizeof path, "/proc/%d/mem", pid);
  // An open mem file holds the memory it was opened on: the exe still foreign
  // after the open means it is the agent's memory, whatever happens next.
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (classify(pid, exe, sizeof exe) == kForeign) {
      uintptr_t at = exeMapping(pid, exe);
      ssize_t n = at != 0 ? pread(fd, buf, sizeof buf, (off_t)at) : -1;
      if (n > 0) {
        escape("mem", pid, exe, buf, n);
      }
    }
    close(fd);
  }
  // Its environment: the agent's, secrets included, before the exec.
  snprintf(path, sizeof path, "/proc/%d/environ", pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0 && classify(pid, exe, sizeof exe) == kForeign) {
      escape("environ", pid, exe, buf, n);
    }
    close(fd);
  }
  if (classify(pid, exe, sizeof exe) == kForeign) {
    uintptr_t at = exeMapping(pid, exe);
    struct iovec local = {buf, sizeof buf}, remote = {(void*)at, sizeof buf};
    ssize_t n = at != 0 ? process_vm_readv(pid, &local, 1, &remote, 1, 0) : -1;
    if (n > 0 && classify(pid, exe, sizeof exe) == kForeign) {
      escape("process_vm_readv", pid, exe, buf, n);
    }
  }
  // CVE-2019-5736: a handle on the binary the agent runs from, to write it
  // once nothing executes it. A sealed memfd copy cannot be written at all.
  snprintf(path, sizeof path, "/proc/%d/exe", pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (classify(pid, exe, sizeof exe) == kForeign) {
      int seals = fcntl(fd, F_GET_SEALS);
      if (seals < 0 || (seals & F_SEAL_WRITE) == 0) {
        escape("exe-handle", pid, exe, NULL, 0);
      }
      char self[64];
      snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
      int w = open(self, O_RDWR | O_CLOEXEC);
      if (w >= 0) {
        escape("exe-open-for-write", pid, exe, NULL, 0);
        close(w);
      }
    }
    close(fd);
  }
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) {
    if (classify(pid, exe, sizeof exe) == kForeign) {
      escape("ptrace", pid, exe, NULL, 0);
    }
    // Let it go: a stop would hold it until we wait for it.
    if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0) {
      int status;
      waitpid(pid, &status, __WALL);
    }
    ptrace(PTRACE_DETACH, pid, 0, 0);
  }
}

// Attacks `pid` in a hot loop until it has exec'ed into this container's
// binaries, is gone, or 2 s passed; returns whether it was seen before exec.
static int chase(pid_t pid, int* exposed) {
  char exe[512];
  int early = 0;
  double until = now() + 2;
  while (now() < until) {
    enum State s = classify(pid, exe, sizeof exe);
    if (s == kGone || s == kOurs) {
      break;
    }
    early = 1;
    if (s == kForeign) {
      *exposed = 1;
    }
    attack(pid);
  }
  return early;
}

static int hunt(double seconds) {
  static pid_t seen[8192];
  int nseen = 0, early = 0, exposed = 0;
  pid_t self = getpid();
  double until = now() + seconds;
  while (now() < until) {
    DIR* proc = opendir("/proc");
    if (proc == NULL) {
      return verdict("hunt: opendir /proc", -1);
    }
    for (struct dirent* e; (e = readdir(proc)) != NULL;) {
      pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
      if (pid <= 0 || pid == self) {
        continue;
      }
      int known = 0;
      for (int i = 0; i < nseen && !known; i++) {
        known = seen[i] == pid;
      }
      if (known || nseen == (int)(sizeof seen / sizeof seen[0])) {
        continue;
      }
      seen[nseen++] = pid;
      int was_exposed = 0;
      early += chase(pid, &was_exposed);
      exposed += was_exposed;
    }
    closedir(proc);
  }
  printf("hunt: pids=%d early=%d exposed=%d escapes=%d\n", nseen, early, exposed, g_escapes);
  return g_escapes != 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 4 && strcmp(argv[1], "key-add") == 0) {
    return keyAdd(argv[2], argv[3]);
  }
  if (argc >= 3 && strcmp(argv[1], "key-read") == 0) {
    return keyRead(argv[2], argc >= 4 ? argv[3] : NULL);
  }
  if (argc >= 2 && strcmp(argv[1], "clone3-userns") == 0) {
    return cloneUserns();
  }
  if (argc >= 3 && strcmp(argv[1], "hunt") == 0) {
    return hunt(strtod(argv[2], NULL));
  }
  fprintf(stderr,
          "usage: kt-escape key-add DESC DATA | key-read DESC [SERIAL] | clone3-userns | "
          "hunt SECONDS\n");
  return 2;
}
