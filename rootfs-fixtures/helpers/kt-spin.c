// kt-spin [seconds]: burns CPU on one thread (default: forever). Used to see
// cpu.max throttle a container.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char** argv) {
  double limit = argc > 1 ? strtod(argv[1], NULL) : -1;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  volatile unsigned long x = 0;
  for (;;) {
    for (int i = 0; i < 1000000; i++) {
      x += (unsigned long)i;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    double spent = (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
    if (limit >= 0 && spent >= limit) {
      printf("kt-spin: spun %.1f s\n", spent);
      return 0;
    }
  }
}
