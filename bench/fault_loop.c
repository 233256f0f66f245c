/*
 * Bench target: N threads parked in nanosleep; the main thread takes a
 * SIGSEGV, recovers with siglongjmp, and repeats: every fault is one capture.
 *
 *   fault_loop THREADS FAULTS GO_FD
 *
 * Prints "ready" once the workers are started, then waits for a byte on
 * GO_FD before faulting FAULTS times (one fault per byte read).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static sigjmp_buf env;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(env, 1);
}

static void *park(void *arg)
{
	(void)arg;
	struct timespec ts = {3600, 0};
	for (;;)
		nanosleep(&ts, NULL);
	return NULL;
}

__attribute__((noinline)) static void fault(volatile int *p)
{
	*p = 1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: fault_loop THREADS FAULTS GO_FD\n");
		return 2;
	}
	int threads = atoi(argv[1]), faults = atoi(argv[2]), go = atoi(argv[3]);
	for (int i = 1; i < threads; i++) {
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 64 * 1024);
		if (pthread_create(&t, &a, park, NULL) != 0)
			return 1;
	}
	struct sigaction sa = {0};
	sa.sa_handler = on_segv;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < faults; i++) {
		char c;
		if (read(go, &c, 1) != 1)
			return 3;
		if (sigsetjmp(env, 1) == 0)
			fault(NULL);
	}
	return 0;
}
