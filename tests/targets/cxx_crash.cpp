// C++ test target: a crash inside a class template's member, reached
// through a namespace function and a lambda; names must come out demangled.
//
//   cxx_crash --report FD --go FD
//
// Reports "thread TID 0xPTHREAD main" and "ready" on the report fd, waits
// for a byte on the go fd, then dereferences null.
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fh_demo {

template <typename T> class Holder {
public:
	explicit Holder(T *p) : p_(p) {}
	__attribute__((noinline)) void store(T v)
	{
		*p_ = v; /* @cxx_store */
		__asm__ volatile("" ::: "memory");
	}

private:
	T *volatile p_;
};

__attribute__((noinline)) void run(int v)
{
	auto go = [v]() {
		Holder<int> h(nullptr);
		h.store(v); /* @cxx_lambda */
		__asm__ volatile("" ::: "memory");
	};
	go();
	__asm__ volatile("" ::: "memory");
}

} // namespace fh_demo

int main(int argc, char **argv)
{
	if (argc != 5 || std::strcmp(argv[1], "--report") || std::strcmp(argv[3], "--go")) {
		std::fprintf(stderr, "usage: cxx_crash --report FD --go FD\n");
		return 2;
	}
	int report = std::atoi(argv[2]), go = std::atoi(argv[4]);
	char line[128];
	int n = std::snprintf(line, sizeof(line), "thread %ld 0x%lx main\nready\n",
			      static_cast<long>(syscall(SYS_gettid)),
			      static_cast<unsigned long>(pthread_self()));
	if (write(report, line, static_cast<size_t>(n)) != n)
		return 3;
	char c;
	if (read(go, &c, 1) != 1)
		return 3;
	fh_demo::run(42); /* @cxx_main */
	return 0;
}
