#pragma once

// sys.stdlib_module_names of a launched Python command, read as soon as it
// exists (see StdlibReader).

#include "python/python.h"

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace fh {

class Capture;

// sys.stdlib_module_names of a launched Python command: it exists only once
// the interpreter has started, a few milliseconds after exec, and is needed
// to render a fatal error that may come any moment after.  A thread reads
// it (process_vm_readv) as soon as it can, independently of the event loop
// (which may be busy loading symbols).
class StdlibReader {
public:
	StdlibReader(pid_t pid, const PythonRuntime &rt, const Capture &capture);
	~StdlibReader();
	StdlibReader(const StdlibReader &) = delete;
	StdlibReader &operator=(const StdlibReader &) = delete;

	// The names once read; waits up to `patience` for a read under way.
	std::optional<std::set<std::string>> names(std::chrono::milliseconds patience = {});

private:
	void run(pid_t pid, const Capture &capture);

	PythonRuntime rt_;
	std::mutex mu_;
	std::condition_variable cv_;
	bool stop_ = false;
	bool done_ = false; // read, or given up
	std::optional<std::set<std::string>> names_;
	std::thread thread_;
};

} // namespace fh
