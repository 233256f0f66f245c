#include "process/launch.h"

#include "util/error.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fh {

Launch::Launch(const std::vector<std::string> &argv, int close_fd)
{
	if (argv.empty())
		throw Error("no command to run", EINVAL, kExitUsage);
	int go[2], err[2];
	if (pipe2(go, O_CLOEXEC) != 0)
		throw sys_error("pipe", errno);
	if (pipe2(err, O_CLOEXEC) != 0) {
		int e = errno;
		close(go[0]);
		close(go[1]);
		throw sys_error("pipe", e);
	}
	std::vector<char *> args;
	for (const auto &a : argv)
		args.push_back(const_cast<char *>(a.c_str()));
	args.push_back(nullptr);

	pid_ = fork();
	if (pid_ < 0) {
		int e = errno;
		for (int fd : {go[0], go[1], err[0], err[1]})
			close(fd);
		throw sys_error("fork", e);
	}
	if (pid_ == 0) {
		// The child: only async-signal-safe calls from here on.
		close(go[1]);
		close(err[0]);
		if (close_fd >= 0)
			close(close_fd);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, nullptr);
		signal(SIGPIPE, SIG_DFL); // fh-bpf ignores it; the command must not
		char c;
		ssize_t n;
		do
			n = read(go[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			_exit(127); // fh-bpf could not arm: CMD never runs unwatched
		execvp(args[0], args.data());
		int e = errno;
		(void)!write(err[1], &e, sizeof(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	close(go[0]);
	close(err[1]);
	go_fd_ = go[1];
	error_fd_ = err[0];
}

Launch::~Launch()
{
	if (go_fd_ >= 0)
		close(go_fd_);
	if (error_fd_ >= 0)
		close(error_fd_);
	if (pid_ > 0 && !reaped_) {
		if (!released_)
			kill(pid_, SIGKILL);
		// A released child is CMD: it runs on, unwatched, if fh-bpf fails.
		if (!released_)
			waitpid(pid_, nullptr, 0);
	}
}

int Launch::release()
{
	released_ = true;
	if (write(go_fd_, "x", 1) != 1) // EPIPE: it died waiting (a Ctrl-C)
		throw sys_error("starting the command", errno);
	close(go_fd_);
	go_fd_ = -1;
	int e = 0;
	ssize_t n;
	do
		n = read(error_fd_, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(error_fd_);
	error_fd_ = -1;
	return n == sizeof(e) ? e : 0;
}

int Launch::reap()
{
	int st = 0;
	while (waitpid(pid_, &st, 0) < 0) {
		if (errno != EINTR)
			throw sys_error("waiting for the command", errno);
	}
	reaped_ = true;
	return st;
}

int shell_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

} // namespace fh
