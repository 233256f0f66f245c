/*
 * Benchmark tool: what a BPF program on signal_generate costs a workload of
 * signals, measured so that the host's drift cancels out.
 *
 *   signal_toggle PROG_ID ROUNDS CHUNK
 *
 * Takes a reference to program PROG_ID (the agent's on_signal_generate, as
 * the agent loaded and configured it) and loads a program that does
 * nothing, prints "ready" and waits for a line on stdin (the agent is
 * stopped meanwhile: its link goes, the program stays). Then ROUNDS times,
 * in an order drawn at random each round, raises and handles SIGUSR1 CHUNK
 * times with no program on the tracepoint, with the agent's program
 * attached by a link of this tool's, and with the empty one, and prints
 * "round OFF PROGRAM EMPTY", ns a signal.
 *
 * Runs of whole processes, seconds apart, differ here by 10 % and more (the
 * host's other tenants); chunks a few milliseconds apart share those
 * conditions, so the differences within a round are the programs'.
 */
#define _GNU_SOURCE
#include <linux/bpf.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* A program that does nothing: what any program on the tracepoint costs. */
static int load_empty(void)
{
	struct bpf_insn insns[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_RAW_TRACEPOINT;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.insn_cnt = 2;
	a.license = (uint64_t)(uintptr_t) "GPL";
	return (int)sys_bpf(BPF_PROG_LOAD, &a);
}

/* tp_btf programs name their tracepoint themselves; a raw one by name. */
static int attach(int prog_fd, const char *tracepoint)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.raw_tracepoint.prog_fd = prog_fd;
	a.raw_tracepoint.name = (uint64_t)(uintptr_t)tracepoint;
	return (int)sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &a);
}

static double chunk(long n)
{
	double t0 = now_ns();

	for (long i = 0; i < n; i++)
		raise(SIGUSR1);
	return (now_ns() - t0) / n;
}

int main(int argc, char **argv)
{
	union bpf_attr a;
	struct sigaction sa;
	int progs[2], rounds;
	long n;
	unsigned seed = 12345;
	char line[16];

	if (argc != 4) {
		fprintf(stderr, "usage: signal_toggle PROG_ID ROUNDS CHUNK\n");
		return 2;
	}
	rounds = atoi(argv[2]);
	n = atol(argv[3]);
	if (rounds < 1 || n < 1) {
		fprintf(stderr, "signal_toggle: ROUNDS and CHUNK must be positive\n");
		return 2;
	}
	memset(&a, 0, sizeof(a));
	a.prog_id = (uint32_t)strtoul(argv[1], NULL, 0);
	progs[0] = (int)sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
	if (progs[0] < 0) {
		perror("signal_toggle: program");
		return 1;
	}
	progs[1] = load_empty();
	if (progs[1] < 0) {
		perror("signal_toggle: empty program");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	chunk(n); /* warm up */
	for (int r = 0; r < rounds; r++) {
		double ns[3]; /* off, the program, the empty one */
		int order[3] = {0, 1, 2};

		for (int i = 2; i > 0; i--) {
			int j, t;

			seed = seed * 1103515245 + 12345;
			j = (int)((seed >> 16) % (unsigned)(i + 1));
			t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		for (int i = 0; i < 3; i++) {
			int k = order[i], link = -1;

			if (k) {
				link = attach(progs[k - 1], k == 1 ? NULL : "signal_generate");
				if (link < 0) {
					perror("signal_toggle: attach");
					return 1;
				}
			}
			ns[k] = chunk(n);
			if (link >= 0)
				close(link);
		}
		printf("round %.1f %.1f %.1f\n", ns[0], ns[1], ns[2]);
		fflush(stdout);
	}
	if (handled != (sig_atomic_t)(n * (3 * rounds + 1))) {
		fprintf(stderr, "signal_toggle: %ld handled\n", (long)handled);
		return 1;
	}
	return 0;
}
