// kt-sleep [seconds]: sleeps (default: forever); on SIGTERM prints a line and
// exits 0 at once, so graceful termination is observable.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void onTerm(int sig) {
  (void)sig;
  static const char msg[] = "kt-sleep: got SIGTERM\n";
  (void)write(1, msg, sizeof msg - 1);
  _exit(0);
}

int main(int argc, char** argv) {
  signal(SIGTERM, onTerm);
  if (argc > 1) {
    sleep((unsigned)strtol(argv[1], NULL, 10));
    return 0;
  }
  for (;;) {
    pause();
  }
}
