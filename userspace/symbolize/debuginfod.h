#pragma once

// Debug files from debuginfod servers (DEBUGINFOD_URLS), through elfutils'
// libdebuginfod.  The library is opened at the first question, not linked:
// it brings libcurl and its TLS stack, about 9 ms of dynamic loading that
// every start of fh-bpf would pay (a one-shot dump takes 2).  libdw itself
// loads it the same way.

#include <string>

namespace fh {

class Debuginfod {
public:
	Debuginfod() = default;
	~Debuginfod();
	Debuginfod(const Debuginfod &) = delete;
	Debuginfod &operator=(const Debuginfod &) = delete;

	// Whether DEBUGINFOD_URLS names a server.
	static bool configured();

	// The debug file of a build id (raw bytes), downloaded into the
	// client's cache (DEBUGINFOD_CACHE_PATH): its path, or "" when no
	// server has it.  Any other failure (no server answers, the library
	// is missing) is kept in error() and ends the questions: one
	// unreachable server is not asked again for each module.
	std::string find_debuginfo(const std::string &build_id);

	// Why a question failed, as one line; "" when none did.
	const std::string &error() const { return error_; }

private:
	bool open();

	struct Api;
	Api *api_ = nullptr;
	void *client_ = nullptr;
	bool failed_ = false;
	std::string error_;
};

} // namespace fh
