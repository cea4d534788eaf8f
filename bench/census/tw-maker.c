/*
 * bench/census: leaves N client-side TIME_WAIT sockets in the current network namespace.
 * Listeners on 127.0.0.1:BASE..BASE+P-1; for each connection the client closes first and the
 * server closes second (after reading EOF), so the client's socket ends in TIME_WAIT and the
 * server's goes LAST_ACK -> CLOSED. Prints one JSON line. Bounded by N and by a 50 s deadline
 * (TIME_WAIT lasts 60 s: a slower machine would see the first ones expire before measuring).
 *
 *   tw-maker BASE P N
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: tw-maker BASE P N\n");
    return 2;
  }
  int base = atoi(argv[1]), nports = atoi(argv[2]);
  long n = atol(argv[3]);
  if (base < 1 || nports < 1 || nports > 64 || base + nports > 65536 || n < 0 || n > 1000000) {
    fprintf(stderr, "tw-maker: bad arguments\n");
    return 2;
  }
  int lfd[64];
  struct sockaddr_in sa[64];
  for (int i = 0; i < nports; i++) {
    memset(&sa[i], 0, sizeof sa[i]);
    sa[i].sin_family = AF_INET;
    sa[i].sin_port = htons(base + i);
    sa[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd[i] = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd[i], (struct sockaddr *)&sa[i], sizeof sa[i]) || listen(lfd[i], 128)) {
      perror("tw-maker: listen");
      return 1;
    }
  }
  double start = now();
  long made = 0, failed = 0;
  char b;
  for (long k = 0; k < n; k++) {
    if ((k & 1023) == 0 && now() - start > 50) break;
    int i = k % nports;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&sa[i], sizeof sa[i])) {
      failed++;
      close(c);
      if (failed > 100) break;
      continue;
    }
    int s = accept(lfd[i], NULL, NULL);
    close(c);                       /* client first: its side will hold TIME_WAIT */
    if (s >= 0) {
      while (read(s, &b, 1) > 0) {}  /* EOF once the client's FIN arrives */
      close(s);                     /* server second: LAST_ACK, then gone */
    }
    made++;
  }
  printf("{\"made\":%ld,\"failed\":%ld,\"seconds\":%.3f}\n", made, failed, now() - start);
  return 0;
}
