#include "app/event_loop.h"

#include "util/error.h"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>

namespace fh {

EventLoop::EventLoop() : ep_(epoll_create1(EPOLL_CLOEXEC))
{
	if (!ep_)
		throw sys_error("setting up the event loop", errno);
}

void EventLoop::add(int fd, uint32_t tag)
{
	struct epoll_event e = {};
	e.events = EPOLLIN;
	e.data.u32 = tag;
	if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &e) != 0)
		throw sys_error("epoll_ctl", errno);
}

void EventLoop::remove(int fd) { epoll_ctl(ep_.get(), EPOLL_CTL_DEL, fd, nullptr); }

std::vector<uint32_t> EventLoop::wait()
{
	struct epoll_event evs[8];
	for (;;) {
		int n = epoll_wait(ep_.get(), evs, 8, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			throw sys_error("epoll_wait", errno);
		std::vector<uint32_t> tags;
		for (int i = 0; i < n; i++)
			tags.push_back(evs[i].data.u32);
		return tags;
	}
}

UniqueFd signal_fd(std::initializer_list<int> signals)
{
	sigset_t mask;
	sigemptyset(&mask);
	for (int s : signals)
		sigaddset(&mask, s);
	sigprocmask(SIG_BLOCK, &mask, nullptr);
	UniqueFd fd(signalfd(-1, &mask, SFD_CLOEXEC));
	if (!fd)
		throw sys_error("signalfd", errno);
	return fd;
}

bool read_signal(int fd, SignalRead &out)
{
	struct signalfd_siginfo si;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return false;
	out.signo = static_cast<int>(si.ssi_signo);
	out.code = si.ssi_code;
	out.sender = static_cast<pid_t>(si.ssi_pid);
	return true;
}

void set_timer(int fd, uint64_t first_us, uint64_t interval_us)
{
	struct itimerspec its = {};
	its.it_value.tv_sec = static_cast<time_t>(first_us / 1000000);
	its.it_value.tv_nsec = static_cast<long>(first_us % 1000000 * 1000);
	its.it_interval.tv_sec = static_cast<time_t>(interval_us / 1000000);
	its.it_interval.tv_nsec = static_cast<long>(interval_us % 1000000 * 1000);
	if (timerfd_settime(fd, 0, &its, nullptr) != 0)
		throw sys_error("timerfd_settime", errno);
}

UniqueFd interval_timer(uint64_t first_us, uint64_t interval_us)
{
	UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
	if (!fd)
		throw sys_error("timerfd_create", errno);
	set_timer(fd.get(), first_us, interval_us);
	return fd;
}

uint64_t read_timer(int fd)
{
	uint64_t n = 0;
	return read(fd, &n, sizeof(n)) == sizeof(n) ? n : 0;
}

} // namespace fh
