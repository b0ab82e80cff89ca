/*
 * The net.tap.pps sender and host echo (bench/tap.ts builds this with the
 * host's clang; it is not a guest).
 *
 *   udp echo ADDR PORT            echo every datagram back to its sender
 *   udp send ADDR PORT SECS WIN   keep WIN 64-byte datagrams in flight to
 *                                 ADDR:PORT for SECS seconds; print the
 *                                 echoes/s of the best 50 ms window (a
 *                                 window that lost the CPU to another
 *                                 process measures that process)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char buf[2048];
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (argc < 4 || s < 0 || inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1)
		return 2;
	sa.sin_port = htons((unsigned short)atoi(argv[3]));
	if (strcmp(argv[1], "echo") == 0) {
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return 1;
		printf("up\n");
		fflush(stdout);
		for (;;) {
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
			if (n >= 0)
				sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
		}
	}
	if (argc < 6 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 2;
	double secs = atof(argv[4]);
	int win = atoi(argv[5]);
	struct timeval tv = { .tv_sec = 0, .tv_usec = 20000 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(buf, 'x', 64);
	for (int i = 0; i < win; i++)
		send(s, buf, 64, 0);
	unsigned long got = 0;
	double t0 = now(), end = t0 + secs, w0 = t0, best = 0;
	for (;;) {
		double t = now();
		if (t - w0 >= 0.05) {           /* a window ends */
			if (got / (t - w0) > best)
				best = got / (t - w0);
			got = 0;
			w0 = t;
		}
		if (t >= end)
			break;
		if (recv(s, buf, sizeof(buf), 0) >= 0) {
			got++;
			send(s, buf, 64, 0);
		} else {
			for (int i = 0; i < win; i++)   /* refill what was lost */
				send(s, buf, 64, 0);
		}
	}
	printf("%.0f\n", best);
	return 0;
}
