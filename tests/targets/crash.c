/*
 * Test target: threads parked in known places, then one fatal signal.
 *
 *   crash [--threads N] [--spinners N] [--name NAME] [--report FD --go FD | --auto] MODE
 *
 * MODE: segv | nullcall | abort | fpe | bus | ill | wait | dlopen | deep | deepbig |
 *       handled | mapcrash | linger | usr1 | early | reporter | reporterwait |
 *       reporterexit | cstack
 *
 * Starts N threads in all (default 4): the main thread plus N-1 workers
 * parked, in turn, in nanosleep, in a futex (pthread_cond_wait) and in read;
 * --spinners adds threads that never block, spinning in a C loop (role
 * "spin").  Once every worker is blocked in its system call (and every
 * spinner is spinning), the main thread writes one line per thread to the
 * report fd:
 *
 *   thread TID 0xPTHREAD ROLE
 *
 * then "ready", and reads one byte from the go fd.  Then it raises MODE's
 * signal through a fixed call chain; "wait" instead blocks in read() until
 * something else kills the process, or a byte on the go fd makes it exit 0.
 * "dlopen" loads --plugin PATH after the first byte, reports "loaded", and
 * crashes inside the plugin after a second byte.  "handled" takes a SIGSEGV
 * it catches and recovers from, then exits 0.  "mapcrash" maps an executable
 * page and faults at once.  "linger" sleeps 2.2 seconds after the go byte,
 * then exits 0.  "usr1" catches SIGUSR1 (blocked in the workers, so the main
 * thread receives it) and answers each byte on the go fd with "ack N", N
 * the number of SIGUSR1 handled so far, until a 'q' ends it with status 0.
 * "handledloop" does that ten times.
 * "early" dereferences NULL first thing in main, before any thread starts.
 * "reporter" has a crash reporter's SIGSEGV handler, on a signal stack of
 * its own: it cancels every other thread, joins them, then restores the
 * default action and raises the signal again; "reporterwait" installs it
 * and waits like "wait" (for a SIGSEGV sent from outside); "reporterexit"'s
 * handler ends the process with _exit(7) instead of raising.
 * "cstack" switches the main thread to a stack of its own (swapcontext), a
 * mapping with an inaccessible page above it, and faults there: where that
 * stack ends is known only from what can be read.
 * With --auto (for gdb and the demo) it goes on without waiting.  --name
 * names the process (and so each thread) NAME, bytes as given, first thing.
 *
 * Lines the tests look for carry a marker comment: "@name".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "parked.h"

#define NOINLINE __attribute__((noinline))
/* Keeps a call from becoming a tail jump, so the caller's frame stays. */
#define BARRIER() __asm__ volatile("" ::: "memory")

enum role { ROLE_MAIN, ROLE_SLEEP, ROLE_FUTEX, ROLE_READ, ROLE_SPIN };
static const char *const role_names[] = {"main", "sleep", "futex", "read", "spin"};
static const long role_syscalls[] = {0, SYS_clock_nanosleep, SYS_futex, SYS_read, -1};

struct worker {
	pid_t tid;
	pthread_t self;
	enum role role;
};

static struct worker *workers;
static int nworkers;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static int started;
static int park_pipe[2];

static void die(const char *what)
{
	perror(what);
	_exit(100);
}

NOINLINE static void park_sleep(void)
{
	struct timespec ts = {3600, 0};
	for (;;)
		nanosleep(&ts, NULL); /* @park_sleep */
}

NOINLINE static void park_futex(void)
{
	pthread_mutex_lock(&lock);
	for (;;)
		pthread_cond_wait(&never, &lock); /* @park_futex */
}

volatile unsigned long spins;

NOINLINE static void park_spin(void)
{
	/* One line: a sample anywhere in the loop is at the marker. */
	for (;;) spins++; /* @park_spin */
}

NOINLINE static void park_read(void)
{
	char c;
	for (;;)
		if (read(park_pipe[0], &c, 1) <= 0) /* @park_read */
			BARRIER();
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_lock(&lock);
	w->tid = (pid_t)syscall(SYS_gettid);
	w->self = pthread_self();
	started++;
	pthread_mutex_unlock(&lock);
	switch (w->role) {
	case ROLE_SLEEP:
		park_sleep();
		break;
	case ROLE_FUTEX:
		park_futex();
		break;
	case ROLE_SPIN:
		park_spin();
		break;
	default:
		park_read();
		break;
	}
	return NULL;
}

static void wait_parked(void)
{
	struct timespec tick = {0, 1000000};
	for (int tries = 0; tries < 20000; tries++) {
		int all = 1;
		pthread_mutex_lock(&lock);
		all = started == nworkers;
		pthread_mutex_unlock(&lock);
		for (int i = 0; all && i < nworkers; i++)
			all = parked_in(workers[i].tid, role_syscalls[workers[i].role]);
		if (all)
			return;
		nanosleep(&tick, NULL);
	}
	fprintf(stderr, "crash: workers did not park\n");
	_exit(101);
}

/* Crash chain: poke() is inlined into crash_leaf(). */
static inline __attribute__((always_inline)) void poke(volatile int *p, int v)
{
	*p = v; /* @poke */
}

NOINLINE void crash_leaf(volatile int *p)
{
	poke(p, 42); /* @leaf */
	BARRIER();
}

NOINLINE void crash_mid(volatile int *p)
{
	crash_leaf(p); /* @mid */
	BARRIER();
}

/* cstack: the fault on a stack of the target's own making. */
static ucontext_t cstack_main, cstack_ctx;

NOINLINE static void on_own_stack(void)
{
	crash_mid(NULL); /* @cstack */
	BARRIER();
}

static void crash_on_own_stack(void)
{
	const size_t size = 64 * 1024;
	char *stack = mmap(NULL, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);

	if (stack == MAP_FAILED || mprotect(stack + size, 4096, PROT_NONE) != 0 ||
	    getcontext(&cstack_ctx) != 0)
		die("cstack");
	cstack_ctx.uc_stack.ss_sp = stack;
	cstack_ctx.uc_stack.ss_size = size;
	cstack_ctx.uc_link = &cstack_main;
	makecontext(&cstack_ctx, on_own_stack, 0);
	swapcontext(&cstack_main, &cstack_ctx); /* @main_cstack */
}

/* Deep stacks: small frames (for the frame limit), big ones (for the copy). */
NOINLINE void recurse_small(int n)
{
	if (n > 0)
		recurse_small(n - 1); /* @recurse_small */
	else
		*(volatile int *)0 = 1;
	BARRIER();
}

NOINLINE void recurse_big(int n)
{
	volatile char pad[512];
	pad[0] = (char)n;
	if (n > 0)
		recurse_big(n - 1); /* @recurse_big */
	else
		*(volatile int *)0 = pad[0];
	BARRIER();
}

/* A call through a null function pointer: the fault is at pc 0. */
void (*volatile null_handler)(void);

NOINLINE void call_null(void)
{
	null_handler(); /* @nullcall */
	BARRIER();
}

NOINLINE void do_abort(void)
{
	abort(); /* @abort */
}

NOINLINE int divide(int a, volatile int *b)
{
	return a / *b; /* @divide */
}

NOINLINE int touch_truncated(void)
{
	char path[] = "/tmp/fh-bpf-bus-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		die("mkstemp");
	unlink(path);
	if (ftruncate(fd, 4096) != 0)
		die("ftruncate");
	volatile char *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	if (ftruncate(fd, 0) != 0)
		die("ftruncate");
	return p[0]; /* @bus */
}

NOINLINE void illegal(void)
{
	__asm__ volatile("ud2"); /* @ill */
}

/* Blocks until something kills the process; a byte on fd ends the wait. */
NOINLINE void wait_for_kill(int fd)
{
	char c;
	while (read(fd, &c, 1) <= 0) /* @wait */
		pause();
	BARRIER();
}

NOINLINE void linger(void)
{
	struct timespec ts = {2, 200000000};
	while (nanosleep(&ts, &ts) != 0) /* @linger */
		BARRIER();
}

static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

NOINLINE void serve_usr1(int go_fd, FILE *report)
{
	char c;
	while (read(go_fd, &c, 1) == 1 && c != 'q') { /* @serve_signals */
		fprintf(report, "ack %d\n", (int)usr1_count);
		fflush(report);
	}
}

static sigjmp_buf recover;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(recover, 1);
}

/* A crash reporter: what a service's own SIGSEGV handler does. */
static int reporter_exits;

static void on_segv_report(int sig)
{
	for (int i = 0; i < nworkers; i++)
		pthread_cancel(workers[i].self);
	for (int i = 0; i < nworkers; i++) {
		/* A futex parker cancelled dies holding the lock its fellow
		 * needs: that one is waited for a bounded while only. */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_timedjoin_np(workers[i].self, NULL, &until);
	}
	if (reporter_exits)
		_exit(7);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_reporter(void)
{
	static char altstack[64 * 1024];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
	struct sigaction sa;

	if (sigaltstack(&ss, NULL) != 0)
		die("sigaltstack");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_segv_report;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGSEGV, &sa, NULL);
}

static int parse_fd(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == 0 || *end != 0 || v < 0 || v > 1 << 20) {
		fprintf(stderr, "crash: bad fd '%s'\n", s);
		exit(2);
	}
	return (int)v;
}

/* segvall: every faulter and main fault at once, released by one barrier. */
static pthread_barrier_t all_fault;

static void *faulter_main(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&all_fault);
	crash_mid(NULL); /* @faulter_segv */
	return NULL;
}

NOINLINE static void segv_all(int n)
{
	if (pthread_barrier_init(&all_fault, NULL, (unsigned)n + 1) != 0)
		die("pthread_barrier_init");
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, faulter_main, NULL) != 0)
			die("pthread_create");
	}
	pthread_barrier_wait(&all_fault);
	crash_mid(NULL); /* @main_segvall */
}

int main(int argc, char **argv)
{
	int report_fd = -1, go_fd = -1, nthreads = 4, nspinners = 0, autorun = 0;
	const char *mode = NULL, *plugin = NULL, *name = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--spinners") && i + 1 < argc)
			nspinners = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--report") && i + 1 < argc)
			report_fd = parse_fd(argv[++i]);
		else if (!strcmp(argv[i], "--go") && i + 1 < argc)
			go_fd = parse_fd(argv[++i]);
		else if (!strcmp(argv[i], "--plugin") && i + 1 < argc)
			plugin = argv[++i];
		else if (!strcmp(argv[i], "--name") && i + 1 < argc)
			name = argv[++i];
		else if (!strcmp(argv[i], "--auto"))
			autorun = 1;
		else if (argv[i][0] != '-' && !mode)
			mode = argv[i];
		else {
			fprintf(stderr, "crash: bad argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!mode || nthreads < 1 || nthreads > 10000 || nspinners < 0 || nspinners > 64 ||
	    (!autorun && (report_fd < 0 || go_fd < 0))) {
		fprintf(stderr, "usage: crash [--threads N] [--spinners N] (--report FD --go FD | --auto) "
				"segv|segvall|abort|fpe|bus|ill|wait|sigwait\n");
		return 2;
	}
	if (name && prctl(PR_SET_NAME, name, 0, 0, 0) != 0)
		die("prctl");
	if (!strcmp(mode, "early"))
		crash_mid(NULL); /* @main_early */
	if (pipe(park_pipe) != 0)
		die("pipe");
	if (!strcmp(mode, "usr1")) {
		/* Workers inherit a blocked SIGUSR1: the main thread takes it. */
		struct sigaction sa;
		sigset_t usr1;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGUSR1, &sa, NULL);
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	}

	if (!strcmp(mode, "sigwait")) {
		/* Every thread blocks SIGTERM: main reads it with sigwait(). */
		sigset_t term;
		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &term, NULL);
	}

	nworkers = nthreads - 1 + nspinners;
	workers = calloc(nworkers ? nworkers : 1, sizeof(*workers));
	for (int i = 0; i < nworkers; i++) {
		pthread_t t;
		pthread_attr_t attr;
		workers[i].role = i < nthreads - 1 ? ROLE_SLEEP + i % 3 : ROLE_SPIN;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		if (pthread_create(&t, &attr, worker_main, &workers[i]) != 0)
			die("pthread_create");
		pthread_attr_destroy(&attr);
	}
	wait_parked();
	if (!strcmp(mode, "usr1")) {
		sigset_t usr1;
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	}

	FILE *report = autorun ? stdout : fdopen(report_fd, "w");
	if (!report)
		die("fdopen");
	fprintf(report, "thread %d 0x%lx %s\n", getpid(), (unsigned long)pthread_self(),
		role_names[ROLE_MAIN]);
	for (int i = 0; i < nworkers; i++)
		fprintf(report, "thread %d 0x%lx %s\n", workers[i].tid,
			(unsigned long)workers[i].self, role_names[workers[i].role]);
	fprintf(report, "ready\n");
	fflush(report);

	if (!strcmp(mode, "wait")) {
		wait_for_kill(autorun ? park_pipe[0] : go_fd);
		return 0;
	}
	if (!strncmp(mode, "reporter", 8)) {
		reporter_exits = !strcmp(mode, "reporterexit");
		install_reporter();
		if (!strcmp(mode, "reporterwait")) {
			wait_for_kill(autorun ? park_pipe[0] : go_fd);
			return 0;
		}
	}
	if (!strcmp(mode, "sigwait")) {
		/* A daemon's clean stop: SIGTERM read, then exit(0). */
		sigset_t term;
		int sig = 0;
		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		sigwait(&term, &sig);
		return sig == SIGTERM ? 0 : 5;
	}
	if (!strcmp(mode, "usr1")) {
		serve_usr1(go_fd, report);
		return 0;
	}
	if (!autorun) {
		char c;
		if (read(go_fd, &c, 1) != 1)
			return 3;
	}
	if (!strcmp(mode, "linger")) {
		linger(); /* @main_linger */
		return 0;
	} else if (!strcmp(mode, "segv")) {
		crash_mid(NULL); /* @main_segv */
	} else if (!strncmp(mode, "reporter", 8)) {
		crash_mid((volatile int *)48); /* @main_reporter */
	} else if (!strcmp(mode, "segvall")) {
		segv_all(4);
	} else if (!strcmp(mode, "cstack")) {
		crash_on_own_stack();
	} else if (!strcmp(mode, "handled") || !strcmp(mode, "handledloop")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_segv;
		sigaction(SIGSEGV, &sa, NULL);
		/* Distinct arguments keep the compiler from merging the calls. */
		if (sigsetjmp(recover, 1) == 0)
			crash_mid((volatile int *)32);
		/* handledloop: nine more, each recovered from. */
		for (int i = 1; !strcmp(mode, "handledloop") && i < 10; i++)
			if (sigsetjmp(recover, 1) == 0)
				crash_mid((volatile int *)(uintptr_t)(32 + 8 * i));
		return 0;
	} else if (!strcmp(mode, "mapcrash")) {
		if (mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
		    MAP_FAILED)
			die("mmap");
		crash_mid((volatile int *)16); /* @main_mapcrash */
	} else if (!strcmp(mode, "deep")) {
		recurse_small(150);
	} else if (!strcmp(mode, "deepbig")) {
		recurse_big(100);
	} else if (!strcmp(mode, "nullcall")) {
		call_null(); /* @main_nullcall */
	} else if (!strcmp(mode, "abort")) {
		do_abort(); /* @main_abort */
	} else if (!strcmp(mode, "fpe")) {
		int zero = 0;
		printf("%d\n", divide(1, &zero)); /* @main_fpe */
	} else if (!strcmp(mode, "bus")) {
		printf("%d\n", touch_truncated()); /* @main_bus */
	} else if (!strcmp(mode, "ill")) {
		illegal(); /* @main_ill */
	} else if (!strcmp(mode, "dlopen") && plugin) {
		void *h = dlopen(plugin, RTLD_NOW);
		if (!h) {
			fprintf(stderr, "crash: %s\n", dlerror());
			return 4;
		}
		void (*fn)(volatile int *) = (void (*)(volatile int *))dlsym(h, "plugin_crash");
		fprintf(report, "loaded\n");
		fflush(report);
		char c;
		if (!autorun && read(go_fd, &c, 1) != 1)
			return 3;
		fn(NULL); /* @main_plugin */
	} else {
		fprintf(stderr, "crash: unknown mode '%s'\n", mode);
		return 2;
	}
	BARRIER();
	return 0;
}
