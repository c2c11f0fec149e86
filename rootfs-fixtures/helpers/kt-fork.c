// kt-fork N: forks N children that sleep, reports how many forks succeeded and
// the first error, then reaps them. Exit 0 when all N succeeded, 1 otherwise.
// Used to see pids.max stop a container.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: kt-fork N\n");
    return 2;
  }
  long n = strtol(argv[1], NULL, 10);
  long ok = 0;
  int first_errno = 0;
  pid_t* pids = calloc((size_t)n, sizeof(pid_t));
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      pause();
      _exit(0);
    }
    if (pid < 0) {
      first_errno = errno;
      break;
    }
    pids[ok++] = pid;
  }
  for (long i = 0; i < ok; i++) {
    kill(pids[i], SIGKILL);
    waitpid(pids[i], NULL, 0);
  }
  if (ok == n) {
    printf("kt-fork: forked %ld\n", ok);
    return 0;
  }
  printf("kt-fork: forked %ld of %ld: %s\n", ok, n, strerror(first_errno));
  return 1;
}
