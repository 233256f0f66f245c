/*
 * A program that is no Python but maps a file that looks like a libpython
 * 3.11 (libpython3.11.so, built from hostile_py_runtime.c) and points its
 * _PyRuntime at structures chosen to cost a reader as much as they can:
 * for the tests of fh-bpf's bounds (run as an unprivileged user).
 *
 *   hostile_py crash LIB   100 thread states in a list that loops, each on
 *                          a frame chain of 150 frames that loops back to
 *                          its 100th, every name 500 characters of
 *                          U+10FFFF, 4,096 extension modules so named, a
 *                          sys dict of 4,096 such keys; says "ready", and
 *                          on a line on stdin dies of SIGSEGV
 *   hostile_py live LIB    the same, says "ready", lives until stdin closes
 *   hostile_py map FILE... maps each file executable, says "ready", lives
 *                          until stdin closes
 *   hostile_py lease SRC DST  copies SRC to DST, takes a write lease on it
 *                          and maps it executable; says "ready"; for
 *                          each line on stdin says "lease=L sigio=N" (L:
 *                          F_GETLEASE's answer, N: lease break signals
 *                          received), until stdin closes
 *
 * Offsets are CPython 3.11's, as fh-bpf's built-in table has them.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define THREADS 100
#define FRAMES 150
#define LOOP_TO 100 /* the last frame's previous */
#define NAME_CHARS 500
#define ENTRIES 4096

static void *zalloc(size_t n)
{
	void *p = calloc(1, n);

	if (!p) {
		perror("calloc");
		exit(2);
	}
	return p;
}

static void put(void *obj, size_t off, uint64_t v)
{
	memcpy((char *)obj + off, &v, sizeof(v));
}

/* A dict of `n` (key, value) entries, unicode keys (3.11 layout). */
static void *dict(void *key, void *value, size_t n)
{
	void *d = zalloc(48);
	unsigned char *k = zalloc(32 + 8 + 16 * n);

	k[9] = 3;  /* dk_log2_index_bytes: 8 bytes of indices */
	k[10] = 1; /* dk_kind: unicode keys, (key, value) entries */
	put(k, 24, n); /* dk_nentries */
	for (size_t i = 0; i < n; i++) {
		put(k, 40 + 16 * i, (uint64_t)(uintptr_t)key);
		put(k, 40 + 16 * i + 8, (uint64_t)(uintptr_t)value);
	}
	put(d, 32, (uint64_t)(uintptr_t)k); /* ma_keys; ma_values 0 */
	return d;
}

static void build(void *lib)
{
	unsigned char *runtime = dlsym(lib, "_PyRuntime");
	void *module_type = dlsym(lib, "PyModule_Type");

	if (!runtime || !module_type) {
		fprintf(stderr, "hostile_py: no _PyRuntime in the library\n");
		exit(2);
	}
	/* A str of 500 characters U+10FFFF: compact, 4 bytes a character. */
	void *str_type = zalloc(256);
	put(str_type, 168, 1ull << 28); /* Py_TPFLAGS_UNICODE_SUBCLASS */
	unsigned char *name = zalloc(72 + 4 * NAME_CHARS + 4);
	put(name, 8, (uint64_t)(uintptr_t)str_type);
	put(name, 16, NAME_CHARS);
	put(name, 32, 4u << 2 | 1u << 5);
	for (int i = 0; i < NAME_CHARS; i++) {
		uint32_t ch = 0x10ffff;
		memcpy(name + 72 + 4 * i, &ch, 4);
	}
	void *table = zalloc(40); /* an empty bytes: ob_size 0 */
	void *code = zalloc(256);
	put(code, 72, 1); /* co_firstlineno */
	put(code, 112, (uint64_t)(uintptr_t)name);
	put(code, 120, (uint64_t)(uintptr_t)name);
	put(code, 136, (uint64_t)(uintptr_t)table);

	void *frames[FRAMES];
	for (int i = 0; i < FRAMES; i++)
		frames[i] = zalloc(80);
	for (int i = 0; i < FRAMES; i++) {
		put(frames[i], 32, (uint64_t)(uintptr_t)code);
		put(frames[i], 56, (uint64_t)(uintptr_t)code + 184); /* prev_instr */
		put(frames[i], 48, (uint64_t)(uintptr_t)frames[i + 1 < FRAMES ? i + 1 : LOOP_TO]);
	}
	void *cframe = zalloc(16);
	put(cframe, 8, (uint64_t)(uintptr_t)frames[0]);

	void *tstates[THREADS];
	for (int i = 0; i < THREADS; i++)
		tstates[i] = zalloc(256);
	for (int i = 0; i < THREADS; i++) {
		put(tstates[i], 8, (uint64_t)(uintptr_t)tstates[(i + 1) % THREADS]);
		put(tstates[i], 56, (uint64_t)(uintptr_t)cframe);
		put(tstates[i], 152, 0x1000 + i); /* thread_id */
	}

	/* Extension modules: PyModuleObject with a md_def whose m_methods is set. */
	void *def = zalloc(72);
	put(def, 64, (uint64_t)(uintptr_t)def);
	void *module = zalloc(32);
	put(module, 8, (uint64_t)(uintptr_t)module_type);
	put(module, 24, (uint64_t)(uintptr_t)def);

	unsigned char *interp = zalloc(1024);
	put(interp, 16, (uint64_t)(uintptr_t)tstates[0]);
	put(interp, 888, (uint64_t)(uintptr_t)dict(name, module, ENTRIES)); /* modules */
	put(interp, 904, (uint64_t)(uintptr_t)dict(name, name, ENTRIES));   /* sys dict */
	/* interpreters.head and .main */
	put(runtime, 40, (uint64_t)(uintptr_t)interp);
	put(runtime, 48, (uint64_t)(uintptr_t)interp);
}

static void wait_eof(void)
{
	char buf[256];

	while (read(0, buf, sizeof(buf)) > 0)
		;
}

static void ready(void)
{
	printf("ready\n");
	fflush(stdout);
}

static volatile sig_atomic_t breaks;

static void on_break(int sig)
{
	(void)sig;
	breaks++;
}

static int lease(const char *src, const char *dst)
{
	char buf[65536];
	ssize_t n;
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (in < 0 || out < 0) {
		perror("hostile_py: lease: open");
		return 2;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			return 2;
	close(in);
	close(out);
	/* The lease first (no one else has the file open yet), then the
	 * mapping: whoever looks at the mapping finds the lease. */
	int fd = open(dst, O_RDONLY | O_CLOEXEC);
	signal(SIGIO, on_break);
	if (fd < 0 || fcntl(fd, F_SETLEASE, F_WRLCK) != 0) {
		perror("hostile_py: F_SETLEASE");
		return 2;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 ||
	    mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED) {
		perror("hostile_py: lease: map");
		return 2;
	}
	ready();
	while (fgets(buf, sizeof(buf), stdin)) {
		printf("lease=%d sigio=%d\n", fcntl(fd, F_GETLEASE), (int)breaks);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && (!strcmp(argv[1], "crash") || !strcmp(argv[1], "live"))) {
		void *lib = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
		if (!lib) {
			fprintf(stderr, "hostile_py: %s\n", dlerror());
			return 2;
		}
		build(lib);
		ready();
		if (!strcmp(argv[1], "live")) {
			wait_eof();
			return 0;
		}
		char line[16];
		if (!fgets(line, sizeof(line), stdin))
			return 0;
		*(volatile int *)0 = 1;
		return 1;
	}
	if (argc >= 3 && !strcmp(argv[1], "map")) {
		for (int i = 2; i < argc; i++) {
			int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
			struct stat st;
			if (fd < 0 || fstat(fd, &st) != 0 ||
			    mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd,
				 0) == MAP_FAILED) {
				perror(argv[i]);
				return 2;
			}
			close(fd);
		}
		ready();
		wait_eof();
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "lease"))
		return lease(argv[2], argv[3]);
	fprintf(stderr, "usage: hostile_py crash|live LIB | map FILE... | lease SRC DST\n");
	return 2;
}
