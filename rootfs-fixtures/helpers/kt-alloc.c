// kt-alloc MiB [hold-seconds]: allocates and touches MiB mebibytes, one at a
// time, printing progress, then holds them (default: forever). Used to push a
// container over memory.max.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: kt-alloc MiB [hold-seconds]\n");
    return 2;
  }
  long mib = strtol(argv[1], NULL, 10);
  for (long i = 0; i < mib; i++) {
    char* p = malloc(1 << 20);
    if (p == NULL) {
      fprintf(stderr, "kt-alloc: malloc failed after %ld MiB\n", i);
      return 1;
    }
    memset(p, 0x5a, 1 << 20);
  }
  printf("kt-alloc: holding %ld MiB\n", mib);
  fflush(stdout);
  if (argc > 2) {
    sleep((unsigned)strtol(argv[2], NULL, 10));
    return 0;
  }
  for (;;) {
    pause();
  }
}
