/*
 * Benchmark target: how much work a process gets done while it is watched.
 *
 *   count_loop SECONDS THREADS
 *
 * Starts THREADS-1 workers parked in nanosleep, prints "ready", waits for a
 * line on stdin, then counts loop iterations in its main thread for SECONDS
 * (a busy loop that reads the clock every 2^16 iterations), prints
 * "rate N" (iterations per second) and waits for its stdin to close.  Built like the test targets: -O2,
 * no frame pointers, debug info.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void *park(void *arg)
{
	struct timespec ts = {3600, 0};
	(void)arg;
	for (;;)
		nanosleep(&ts, NULL);
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

volatile unsigned long sink;

__attribute__((noinline)) static unsigned long count_for(double seconds)
{
	unsigned long n = 0;
	double end = now() + seconds;
	for (;;) {
		for (int i = 0; i < 1 << 16; i++)
			sink = sink * 31 + (unsigned long)i; /* the work */
		n += 1 << 16;
		if (now() >= end)
			return n;
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: count_loop SECONDS THREADS\n");
		return 2;
	}
	double seconds = atof(argv[1]);
	int threads = atoi(argv[2]);
	for (int i = 1; i < threads; i++) {
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		if (pthread_create(&t, &attr, park, NULL) != 0) {
			perror("pthread_create");
			return 1;
		}
		pthread_attr_destroy(&attr);
	}
	printf("ready\n");
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		return 3;
	double t0 = now();
	unsigned long n = count_for(seconds);
	printf("rate %.0f\n", n / (now() - t0));
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
