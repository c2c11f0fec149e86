// kt-syscall NAME: makes one syscall that container profiles care about and
// prints "NAME: ok" (exit 0) or "NAME: <strerror>" (exit 1) with errno as
// "errno=N". Names: unshare (CLONE_NEWUTS), mount (a tmpfs on /tmp), keyctl
// (get the session keyring), clone3 (a plain fork via clone3), addkey DESC (a
// "user" key DESC in the session keyring), findkey DESC (search the session
// keyring for it).
#define _GNU_SOURCE
#include <errno.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long tryClone3(void) {
  struct clone_args args = {.exit_signal = SIGCHLD};
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) {
    _exit(0);
  }
  if (pid > 0) {
    waitpid((pid_t)pid, NULL, 0);
    return 0;
  }
  return -1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: kt-syscall unshare|mount|keyctl|clone3|addkey D|findkey D\n");
    return 2;
  }
  const char* name = argv[1];
  long rc;
  if (strcmp(name, "unshare") == 0) {
    rc = unshare(CLONE_NEWUTS);
  } else if (strcmp(name, "mount") == 0) {
    rc = mount("none", "/tmp", "tmpfs", 0, NULL);
  } else if (strcmp(name, "keyctl") == 0) {
    rc = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1);
  } else if (strcmp(name, "addkey") == 0 && argc == 3) {
    rc = syscall(SYS_add_key, "user", argv[2], "secret", 6, KEY_SPEC_SESSION_KEYRING);
  } else if (strcmp(name, "findkey") == 0 && argc == 3) {
    rc = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", argv[2], 0);
  } else if (strcmp(name, "clone3") == 0) {
    rc = tryClone3();
  } else {
    fprintf(stderr, "kt-syscall: unknown syscall %s\n", name);
    return 2;
  }
  if (rc < 0) {
    int err = errno;
    printf("%s: %s errno=%d\n", name, strerror(err), err);
    return 1;
  }
  printf("%s: ok\n", name);
  return 0;
}
