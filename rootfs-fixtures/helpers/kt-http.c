// kt-http PORT [body]: a minimal HTTP/1.0 server on 0.0.0.0:PORT answering every
// request with 200 and the body (default "ok\n"). Used for probes and networking.
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: kt-http PORT [body]\n");
    return 2;
  }
  const char* body = argc > 2 ? argv[2] : "ok\n";
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  if (bind(s, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(s, 64) != 0) {
    perror("kt-http: bind/listen");
    return 1;
  }
  printf("kt-http: listening on %s\n", argv[1]);
  fflush(stdout);
  for (;;) {
    int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      continue;
    }
    char req[2048];
    (void)read(c, req, sizeof req);
    char head[128];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     strlen(body));
    (void)write(c, head, (size_t)n);
    (void)write(c, body, strlen(body));
    close(c);
  }
}
