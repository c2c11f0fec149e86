// kt-exit N [message]: prints the message (if any) and exits with status N.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: kt-exit N [message]\n");
    return 2;
  }
  if (argc > 2) {
    puts(argv[2]);
  }
  return (int)strtol(argv[1], NULL, 10);
}
