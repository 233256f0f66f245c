#include "agent.h"
#include "error.h"
#include "options.h"
#include "sink.h"
#include "watch.h"

#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

int main(int argc, char **argv)
{
	// A closed stdout, stderr or pipe is an error to report, not a death.
	signal(SIGPIPE, SIG_IGN);
	std::vector<std::string> args(argv + 1, argv + argc);
	try {
		fh::Options opts = fh::parse_options(args);
		if (opts.help) {
			fh::write_all(STDOUT_FILENO, fh::usage_text());
			return fh::kExitOk;
		}
		if (opts.version) {
			fh::write_all(STDOUT_FILENO, fh::version_text());
			return fh::kExitOk;
		}
		if (opts.system_wide)
			return fh::run_agent(opts);
		return opts.dump ? fh::dump(opts) : fh::watch(opts);
	} catch (const fh::Error &e) {
		fh::write_all(STDERR_FILENO, std::string("fh-bpf: ") + e.what() + "\n");
		return e.status();
	} catch (const std::exception &e) {
		fh::write_all(STDERR_FILENO, std::string("fh-bpf: internal error: ") + e.what() + "\n");
		return fh::kExitFailure;
	}
}
