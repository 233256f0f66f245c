/*
 * Test target: a thread overflows its 256 KiB stack through two functions
 * that call each other, until the guard page below the stack stops it.
 *
 *   overflow --report FD --go FD [--core-dir DIR]
 *
 * Starts a thread with a 256 KiB stack that waits for a byte on the go fd.
 * The main thread writes one line per thread to the report fd,
 *
 *   thread TID 0xPTHREAD ROLE        (ROLE: main, diver)
 *   guard 0xLOW 0xHIGH               (the diver's unreadable guard pages)
 *
 * then "ready", and waits for the diver in pthread_join.  On the go byte
 * the diver recurses through dive_a and dive_b, each with a local array it
 * writes, until the stack runs out (SIGSEGV).  With --core-dir the process
 * first moves there and lifts RLIMIT_CORE, so that the kernel writes its
 * core (the tests' oracle) there.
 *
 * Lines the tests look for carry a marker comment: "@name".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "parked.h"

#define NOINLINE __attribute__((noinline, noclone))
#define STACK_BYTES (256 * 1024)
#define PAD 200

static int go_fd = -1;
static volatile int bottom = -1; /* never reached: the recursion ends in a fault */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t diver_tid;
static int diver_started;

static void die(const char *what)
{
	perror(what);
	_exit(100);
}

NOINLINE int dive_b(int depth);

NOINLINE int dive_a(int depth)
{
	volatile char pad[PAD];
	pad[0] = (char)depth;
	if (depth == bottom)
		return 0;
	int r = dive_b(depth + 1); /* @dive_a */
	return r + pad[depth % PAD];
}

NOINLINE int dive_b(int depth)
{
	volatile char pad[PAD];
	pad[0] = (char)depth;
	if (depth == bottom)
		return 0;
	int r = dive_a(depth + 1); /* @dive_b */
	return r + pad[depth % PAD];
}

static void *diver_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	diver_tid = (pid_t)syscall(SYS_gettid);
	diver_started = 1;
	pthread_mutex_unlock(&lock);
	char c;
	if (read(go_fd, &c, 1) != 1)
		_exit(3);
	return (void *)(intptr_t)dive_a(0); /* @diver_main */
}

int main(int argc, char **argv)
{
	int report_fd = -1;
	const char *core_dir = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--report"))
			report_fd = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--go"))
			go_fd = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--core-dir"))
			core_dir = argv[i + 1];
	}
	if (report_fd < 0 || go_fd < 0 || argc % 2 != 1) {
		fprintf(stderr, "usage: overflow --report FD --go FD [--core-dir DIR]\n");
		return 2;
	}
	if (core_dir) {
		struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
		if (chdir(core_dir) != 0 || setrlimit(RLIMIT_CORE, &unlimited) != 0)
			die("core dir");
	}

	pthread_attr_t attr;
	pthread_t diver;
	if (pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, STACK_BYTES) ||
	    pthread_create(&diver, &attr, diver_main, NULL))
		die("pthread_create");

	/* The diver's stack and guard, as glibc placed them. */
	pthread_attr_t got;
	void *stack_lo;
	size_t stack_size, guard_size;
	if (pthread_getattr_np(diver, &got) || pthread_attr_getstack(&got, &stack_lo, &stack_size) ||
	    pthread_attr_getguardsize(&got, &guard_size))
		die("pthread_getattr_np");

	struct timespec tick = {0, 1000000};
	for (int tries = 0;; tries++) {
		pthread_mutex_lock(&lock);
		int started = diver_started;
		pthread_mutex_unlock(&lock);
		if (started && parked_in(diver_tid, SYS_read))
			break;
		if (tries == 20000) {
			fprintf(stderr, "overflow: the diver did not park\n");
			_exit(101);
		}
		nanosleep(&tick, NULL);
	}

	FILE *report = fdopen(report_fd, "w");
	if (!report)
		die("fdopen");
	fprintf(report, "thread %d 0x%lx main\n", getpid(), (unsigned long)pthread_self());
	fprintf(report, "thread %d 0x%lx diver\n", diver_tid, (unsigned long)diver);
	fprintf(report, "guard 0x%lx 0x%lx\n", (unsigned long)((uintptr_t)stack_lo - guard_size),
		(unsigned long)(uintptr_t)stack_lo);
	fprintf(report, "ready\n");
	fflush(report);
	void *ret;
	pthread_join(diver, &ret); /* @main_join */
	return 0;
}
