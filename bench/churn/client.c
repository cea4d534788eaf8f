/*
 * The bench's C reference client: the seed's loop (socket, connect, send "foo", shutdown, close)
 * doing the same bookkeeping twlab churn does per iteration (clock for latency, getsockname for
 * the local port). Concurrency 1 is the plain blocking loop; above 1, nonblocking sockets and
 * epoll. Prints one JSON line.
 *
 *   client ADDR PORT COUNT CONCURRENCY
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct sockaddr_in target;
static unsigned char ports[65536];
static long succeeded, failed, first_errno;
static double lat_sum;

static void finish(int fd, double t0) {
  struct sockaddr_in me;
  socklen_t len = sizeof me;
  if (getsockname(fd, (struct sockaddr *)&me, &len) == 0) ports[ntohs(me.sin_port)] = 1;
  shutdown(fd, SHUT_RDWR);
  close(fd);
  succeeded++;
  lat_sum += now_s() - t0;
}

static void fail(int fd, int err) {
  if (fd >= 0) close(fd);
  failed++;
  if (!first_errno) first_errno = err;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: client ADDR PORT COUNT CONCURRENCY\n");
    return 2;
  }
  target.sin_family = AF_INET;
  target.sin_port = htons(atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &target.sin_addr) != 1) return 2;
  long count = atol(argv[3]);
  int conc = atoi(argv[4]);
  const char *payload = "foo";
  double start = now_s();
  long attempted = 0;
  if (conc <= 1) {
    while (attempted < count && !failed) {
      attempted++;
      double t0 = now_s();
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) { fail(-1, errno); break; }
      if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0) { fail(fd, errno); break; }
      if (send(fd, payload, 3, MSG_NOSIGNAL) < 0) { fail(fd, errno); break; }
      finish(fd, t0);
    }
  } else {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    double *t0s = calloc(65536, sizeof(double));
    long inflight = 0;
    struct epoll_event evs[256];
    while ((attempted < count && !failed) || inflight > 0) {
      while (inflight < conc && attempted < count && !failed) {
        attempted++;
        double t0 = now_s();
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) { fail(-1, errno); break; }
        if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
          fail(fd, errno);
          break;
        }
        t0s[fd] = t0;
        struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        inflight++;
      }
      int n = epoll_wait(ep, evs, 256, 1000);
      for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        inflight--;
        int err = 0;
        socklen_t len = sizeof err;
        if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          fail(fd, err ? err : ECONNRESET);
          continue;
        }
        if (send(fd, payload, 3, MSG_NOSIGNAL) < 0) { fail(fd, errno); continue; }
        finish(fd, t0s[fd]);
      }
    }
  }
  double elapsed = now_s() - start;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  long distinct = 0;
  for (int p = 0; p < 65536; p++) distinct += ports[p];
  printf("{\"attempted\":%ld,\"succeeded\":%ld,\"failed\":%ld,\"firstErrno\":%ld,\"durationMs\":%.1f,"
         "\"connectionsPerSecond\":%.0f,\"meanLatencyMs\":%.4f,\"localPortsUsed\":%ld,\"cpuMs\":%.1f}\n",
         attempted, succeeded, failed, first_errno, elapsed * 1000, succeeded / elapsed,
         succeeded ? lat_sum / succeeded * 1000 : 0, distinct, cpu_ms);
  return 0;
}
