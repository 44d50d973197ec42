/* udp_blast DST_IP PORT PPS SECONDS [SIZE]: sends UDP datagrams at a steady
 * rate for a fixed time (bounded: it stops by itself), then prints how many
 * it sent. Used by bench/live_bench.py inside its own network namespaces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: udp_blast DST_IP PORT PPS SECONDS [SIZE]\n");
    return 2;
  }
  struct sockaddr_in dst;
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  dst.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
    fprintf(stderr, "udp_blast: bad address %s\n", argv[1]);
    return 2;
  }
  const double pps = atof(argv[3]);
  const double seconds = atof(argv[4]);
  const size_t size = argc > 5 ? (size_t)atoi(argv[5]) : 64;
  if (pps <= 0 || seconds <= 0 || seconds > 60 || size > 1400) {
    fprintf(stderr, "udp_blast: PPS > 0, 0 < SECONDS <= 60, SIZE <= 1400\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  char buf[1400];
  memset(buf, 'x', sizeof buf);
  const double start = now();
  const double end = start + seconds;
  unsigned long long sent = 0;
  for (;;) {
    const double t = now();
    if (t >= end) {
      break;
    }
    /* Send what the schedule owes by now, in small bursts. */
    const unsigned long long due = (unsigned long long)((t - start) * pps);
    while (sent < due) {
      if (sendto(fd, buf, size, 0, (struct sockaddr *)&dst, sizeof dst) < 0) {
        break;
      }
      ++sent;
    }
    if (sent >= due) {
      struct timespec nap = {0, 50000};
      nanosleep(&nap, NULL);
    }
  }
  printf("%llu\n", sent);
  close(fd);
  return 0;
}
