// kt-grpc [ADDR:]PORT [ANSWER|/FILE]: a minimal gRPC health server for the
// probe tests: HTTP/2 in cleartext (prior knowledge) on ADDR (default
// 0.0.0.0) and PORT (0: any; the port is printed), answering each call of
// grpc.health.v1.Health/Check with ANSWER, or with the word in FILE read at
// each call (a missing file: NOT_SERVING):
//   SERVING, NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN  that HealthCheckResponse
//   UNIMPLEMENTED  grpc-status 12, as a server without the health service
//   HANG           no answer (the probe's deadline passes)
// A call for the service "unknown" gets grpc-status 5 (NotFound). Written
// from RFC 9113 and RFC 7541 alone, independently of the agent's client
// (libnghttp2): request headers are not decoded (the call is the only one
// served), answers use the static table and literals without Huffman.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int readFull(int fd, void* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char*)buf + got, n - got);
    if (r <= 0) {
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static void frame(int fd, uint8_t type, uint8_t flags, uint32_t stream, const void* p, size_t n) {
  uint8_t h[9] = {(uint8_t)(n >> 16),
                  (uint8_t)(n >> 8),
                  (uint8_t)n,
                  type,
                  flags,
                  (uint8_t)(stream >> 24),
                  (uint8_t)(stream >> 16),
                  (uint8_t)(stream >> 8),
                  (uint8_t)stream};
  (void)write(fd, h, sizeof h);
  if (n > 0) {
    (void)write(fd, p, n);
  }
}

// A header field as a literal without indexing and a new name (RFC 7541 6.2.2).
static size_t literal(uint8_t* out, const char* name, const char* value) {
  size_t n = 0, nl = strlen(name), vl = strlen(value);
  out[n++] = 0x00;
  out[n++] = (uint8_t)nl;
  memcpy(out + n, name, nl);
  n += nl;
  out[n++] = (uint8_t)vl;
  memcpy(out + n, value, vl);
  return n + vl;
}

// :status 200 (static index 8) and content-type (static name 31) application/grpc.
static size_t responseHeaders(uint8_t* out) {
  static const char ct[] = "application/grpc";
  size_t n = 0;
  out[n++] = 0x88;
  out[n++] = 0x0f;
  out[n++] = 31 - 15;
  out[n++] = sizeof ct - 1;
  memcpy(out + n, ct, sizeof ct - 1);
  return n + sizeof ct - 1;
}

static void answer(int fd, uint32_t stream, const char* word, const char* service) {
  uint8_t h[256];
  size_t n = responseHeaders(h);
  if (strcmp(service, "unknown") == 0 || strcmp(word, "UNIMPLEMENTED") == 0) {
    int unknown = strcmp(service, "unknown") == 0;
    n += literal(h + n, "grpc-status", unknown ? "5" : "12");
    n += literal(h + n, "grpc-message",
                 unknown ? "unknown service" : "unknown service grpc.health.v1.Health");
    frame(fd, 1, 0x5, stream, h, n);  // trailers-only: END_STREAM | END_HEADERS
    return;
  }
  int status = strcmp(word, "SERVING") == 0           ? 1
               : strcmp(word, "NOT_SERVING") == 0     ? 2
               : strcmp(word, "SERVICE_UNKNOWN") == 0 ? 3
                                                      : 0;
  frame(fd, 1, 0x4, stream, h, n);  // END_HEADERS
  uint8_t msg[7] = {0, 0, 0, 0, status == 0 ? 0 : 2, 0x08, (uint8_t)status};
  frame(fd, 0, 0, stream, msg, status == 0 ? 5 : 7);  // UNKNOWN is proto3's empty message
  n = literal(h, "grpc-status", "0");
  frame(fd, 1, 0x5, stream, h, n);
}

static void word(const char* spec, char* out, size_t size) {
  if (spec[0] != '/') {
    snprintf(out, size, "%s", spec);
    return;
  }
  snprintf(out, size, "NOT_SERVING");
  FILE* f = fopen(spec, "re");
  if (f != NULL) {
    if (fgets(out, (int)size, f) == NULL) {
      snprintf(out, size, "NOT_SERVING");
    }
    fclose(f);
    out[strcspn(out, "\r\n ")] = '\0';
  }
}

// One connection, until the client closes it (or is silent for 10 s).
static void serve(int c, const char* spec) {
  static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  char got[sizeof preface - 1];
  if (readFull(c, got, sizeof got) != 0 || memcmp(got, preface, sizeof got) != 0) {
    return;
  }
  frame(c, 4, 0, 0, NULL, 0);  // our SETTINGS: the defaults
  static uint8_t p[16384], data[1024];
  size_t data_len = 0;
  for (;;) {
    uint8_t h[9];
    if (readFull(c, h, sizeof h) != 0) {
      return;
    }
    size_t len = ((size_t)h[0] << 16) | ((size_t)h[1] << 8) | h[2];
    uint8_t type = h[3], flags = h[4];
    uint32_t stream =
        ((uint32_t)(h[5] & 0x7f) << 24) | ((uint32_t)h[6] << 16) | ((uint32_t)h[7] << 8) | h[8];
    if (len > sizeof p || readFull(c, p, len) != 0) {
      return;
    }
    if (type == 4 && (flags & 1) == 0) {
      frame(c, 4, 1, 0, NULL, 0);  // SETTINGS ACK
    } else if (type == 6 && (flags & 1) == 0 && len == 8) {
      frame(c, 6, 1, 0, p, 8);  // PING ACK
    } else if (type == 7) {
      return;  // GOAWAY
    } else if (type == 0) {
      size_t off = 0, pad = 0;
      if ((flags & 0x8) != 0 && len > 0) {
        pad = p[0];
        off = 1;
      }
      if (off + pad <= len) {
        size_t n = len - off - pad;
        if (n > sizeof data - data_len) {
          n = sizeof data - data_len;
        }
        memcpy(data + data_len, p + off, n);
        data_len += n;
      }
      if ((flags & 1) != 0) {
        // HealthCheckRequest after the 5-byte gRPC prefix: field 1, a short string.
        char service[128] = "";
        if (data_len >= 7 && data[5] == 0x0a && data[6] < sizeof service &&
            (size_t)data[6] + 7 <= data_len) {
          memcpy(service, data + 7, data[6]);
          service[data[6]] = '\0';
        }
        char w[32];
        word(spec, w, sizeof w);
        if (strcmp(w, "HANG") != 0) {
          answer(c, stream, w, service);
        }
        data_len = 0;
      }
    }
  }
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: kt-grpc [ADDR:]PORT [ANSWER|/FILE]\n");
    return 2;
  }
  const char* spec = argc > 2 ? argv[2] : "SERVING";
  struct sockaddr_in addr = {.sin_family = AF_INET};
  const char* colon = strrchr(argv[1], ':');
  if (colon != NULL) {
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(colon - argv[1]), argv[1]);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
      fprintf(stderr, "kt-grpc: bad address %s\n", host);
      return 2;
    }
  }
  addr.sin_port = htons((uint16_t)atoi(colon != NULL ? colon + 1 : argv[1]));
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t alen = sizeof addr;
  if (bind(s, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(s, 64) != 0 ||
      getsockname(s, (struct sockaddr*)&addr, &alen) != 0) {
    perror("kt-grpc: bind/listen");
    return 1;
  }
  printf("kt-grpc: listening on %d\n", ntohs(addr.sin_port));
  fflush(stdout);
  for (;;) {
    int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      continue;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    serve(c, spec);
    close(c);
  }
}
