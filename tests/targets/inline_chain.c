/*
 * Test target: calls inlined three levels deep (always_inline, -O2 -g), in
 * the thread that faults and in the threads that wait.
 *
 *   inline_chain --report FD --go FD [--core-dir DIR]
 *
 * Starts two workers that block, each at the bottom of a chain of three
 * inlined calls: one in read() on a pipe nobody writes, one in a futex
 * (pthread_cond_wait).  Once both sit in their system call, the main thread
 * writes one line per thread to the report fd,
 *
 *   thread TID 0xPTHREAD ROLE        (ROLE: main, read, futex)
 *
 * then "ready", reads one byte from the go fd and stores through a null
 * pointer at the bottom of three inlined calls.  With --core-dir it first
 * moves there and lifts RLIMIT_CORE, so that the kernel writes its core
 * (the tests' oracle) there.
 *
 * Lines the tests look for carry a marker comment: "@name".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "parked.h"

#define NOINLINE __attribute__((noinline))
#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* Keeps a call from becoming a tail jump, so the caller's frame stays. */
#define BARRIER() __asm__ volatile("" ::: "memory")

static int idle_pipe[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static pid_t worker_tids[2];
static pthread_t worker_selves[2];
static int started;

static void die(const char *what)
{
	perror(what);
	_exit(100);
}

/* --- the faulting chain: store_cell <- fill_row <- fill_table <- update -- */

ALWAYS_INLINE void store_cell(volatile int *cell, int v)
{
	*cell = v; /* @c_store */
}

ALWAYS_INLINE void fill_row(volatile int **rows, int r, int v)
{
	store_cell(rows[r], v + r); /* @c_row */
	BARRIER();
}

ALWAYS_INLINE void fill_table(volatile int **rows, int v)
{
	fill_row(rows, 0, v);
	fill_row(rows, 2, v); /* @c_table */
	BARRIER();
}

__attribute__((noipa)) void update(volatile int **rows, int v)
{
	fill_table(rows, v); /* @c_update */
	BARRIER();
}

/* --- a worker blocked in read(): read_one <- next_byte <- drain ---------- */

ALWAYS_INLINE ssize_t read_one(int fd, char *c)
{
	return read(fd, c, 1); /* @w_read_one */
}

ALWAYS_INLINE int next_byte(int fd)
{
	char c = 0;
	if (read_one(fd, &c) != 1) /* @w_next_byte */
		return -1;
	return c;
}

ALWAYS_INLINE void drain(int fd)
{
	for (;;)
		if (next_byte(fd) < 0) /* @w_drain */
			BARRIER();
}

/* --- a worker blocked in a futex: sleep_on <- hold <- keep_waiting ------- */

ALWAYS_INLINE void sleep_on(pthread_cond_t *cond, pthread_mutex_t *m)
{
	pthread_cond_wait(cond, m); /* @w_sleep_on */
}

ALWAYS_INLINE void hold(pthread_cond_t *cond, pthread_mutex_t *m)
{
	sleep_on(cond, m); /* @w_hold */
	BARRIER();
}

ALWAYS_INLINE void keep_waiting(pthread_cond_t *cond, pthread_mutex_t *m)
{
	pthread_mutex_lock(m);
	for (;;)
		hold(cond, m); /* @w_keep_waiting */
}

static void *reader_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	worker_tids[0] = (pid_t)syscall(SYS_gettid);
	worker_selves[0] = pthread_self();
	started++;
	pthread_mutex_unlock(&lock);
	drain(idle_pipe[0]); /* @w_reader_main */
	return NULL;
}

static void *waiter_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	worker_tids[1] = (pid_t)syscall(SYS_gettid);
	worker_selves[1] = pthread_self();
	started++;
	pthread_mutex_unlock(&lock);
	keep_waiting(&never, &lock); /* @w_waiter_main */
	return NULL;
}

static void wait_parked(void)
{
	struct timespec tick = {0, 1000000};
	for (int tries = 0; tries < 20000; tries++) {
		pthread_mutex_lock(&lock);
		int all = started == 2;
		pthread_mutex_unlock(&lock);
		if (all && parked_in(worker_tids[0], SYS_read) &&
		    parked_in(worker_tids[1], SYS_futex))
			return;
		nanosleep(&tick, NULL);
	}
	fprintf(stderr, "inline_chain: workers did not park\n");
	_exit(101);
}

/* Cores go to dir (the kernel's core_pattern is a file name there). */
static void dump_core_in(const char *dir)
{
	struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
	if (chdir(dir) != 0)
		die("chdir");
	if (setrlimit(RLIMIT_CORE, &unlimited) != 0)
		die("setrlimit");
}

int main(int argc, char **argv)
{
	int report_fd = -1, go_fd = -1;
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
		fprintf(stderr, "usage: inline_chain --report FD --go FD [--core-dir DIR]\n");
		return 2;
	}
	if (core_dir)
		dump_core_in(core_dir);
	if (pipe(idle_pipe) != 0)
		die("pipe");
	pthread_t t;
	if (pthread_create(&t, NULL, reader_main, NULL) || pthread_create(&t, NULL, waiter_main, NULL))
		die("pthread_create");
	wait_parked();

	FILE *report = fdopen(report_fd, "w");
	if (!report)
		die("fdopen");
	fprintf(report, "thread %d 0x%lx main\n", getpid(), (unsigned long)pthread_self());
	fprintf(report, "thread %d 0x%lx read\n", worker_tids[0], (unsigned long)worker_selves[0]);
	fprintf(report, "thread %d 0x%lx futex\n", worker_tids[1], (unsigned long)worker_selves[1]);
	fprintf(report, "ready\n");
	fflush(report);
	char c;
	if (read(go_fd, &c, 1) != 1)
		return 3;

	static int cells[2];
	volatile int *rows[3] = {&cells[0], &cells[1], NULL};
	update(rows, 40); /* @c_main */
	return 0;
}
