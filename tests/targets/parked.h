/*
 * Test targets: whether a thread is parked where the test wants it, read
 * from /proc/self/task/TID/syscall (shared by the C and C++ targets).
 */
#ifndef FH_TARGETS_PARKED_H
#define FH_TARGETS_PARKED_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* True once thread tid sits in system call nr; nr < 0: once it runs in
 * user space (a spinner). */
static inline int parked_in(pid_t tid, long nr)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (nr < 0)
		return strncmp(buf, "running", 7) == 0;
	return strtol(buf, NULL, 10) == nr && strncmp(buf, "running", 7) != 0;
}

#endif /* FH_TARGETS_PARKED_H */
