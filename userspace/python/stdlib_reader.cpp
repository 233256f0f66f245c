#include "python/stdlib_reader.h"

#include "capture/capture.h"
#include "python/py_walk.h"

#include <signal.h>

namespace fh {

StdlibReader::StdlibReader(pid_t pid, const PythonRuntime &rt, const Capture &capture)
	: rt_(rt), thread_([this, pid, &capture] { run(pid, capture); })
{
}

StdlibReader::~StdlibReader()
{
	{
		std::lock_guard<std::mutex> lock(mu_);
		stop_ = true;
	}
	cv_.notify_all();
	thread_.join();
}

std::optional<std::set<std::string>> StdlibReader::names(std::chrono::milliseconds patience)
{
	std::unique_lock<std::mutex> lock(mu_);
	cv_.wait_for(lock, patience, [this] { return names_.has_value() || done_; });
	return names_;
}

void StdlibReader::run(pid_t pid, const Capture &capture)
{
	ProcessMemory mem(pid);
	// Every millisecond for up to a minute, until it reads or the
	// process is gone.
	for (int i = 0; i < 60000; i++) {
		// Where the programs walk it now (the process may exec
		// the same interpreter again, elsewhere).
		uint64_t at = capture.python_runtime();
		rt_.placed = at != 0;
		if (at && at != rt_.runtime_addr)
			place_python_at(rt_, at, 0);
		if (rt_.placed) {
			if (auto n = stdlib_module_names(mem, rt_)) {
				std::lock_guard<std::mutex> lock(mu_);
				names_ = std::move(n);
				done_ = true;
				cv_.notify_all();
				return;
			}
			if (kill(pid, 0) != 0)
				break;
		}
		std::unique_lock<std::mutex> lock(mu_);
		if (cv_.wait_for(lock, std::chrono::milliseconds(1), [this] { return stop_; }))
			break;
	}
	std::lock_guard<std::mutex> lock(mu_);
	done_ = true;
	cv_.notify_all();
}

} // namespace fh
