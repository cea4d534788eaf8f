#define _GNU_SOURCE
/*
 * The bench's server: one epoll loop, accepts as fast as the kernel hands connections over, reads
 * each request until the client's EOF (client-first) or its first bytes (server-first) and closes.
 * Used for every client alike so the clients, not the server, set the pace. Bounded in time.
 *
 *   server ADDR PORT SECONDS [client-first|server-first]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: server ADDR PORT SECONDS [client-first|server-first]\n");
    return 2;
  }
  int server_first = argc > 4 && strcmp(argv[4], "server-first") == 0;
  double end = now_s() + atof(argv[3]);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) return 2;
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
    perror("bind/listen");
    return 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  printf("{\"type\":\"listening\"}\n");
  fflush(stdout);
  struct epoll_event evs[256];
  char buf[4096];
  unsigned long accepted = 0;
  while (now_s() < end) {
    int n = epoll_wait(ep, evs, 256, 100);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          accepted++;
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r > 0 && !server_first) continue;
        if (r < 0 && errno == EAGAIN && !server_first) break;
        close(fd); /* EOF, error, or (server-first) the request is in */
        break;
      }
    }
  }
  fprintf(stderr, "server: accepted %lu\n", accepted);
  return 0;
}
