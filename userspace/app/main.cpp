#include "app/agent.h"
#include "util/error.h"
#include "cli/options.h"
#include "util/printable.h"
#include "output/sink.h"
#include "app/watch.h"
#include "capture/core_btf.h"
#include "symbolize/debug_cache.h"
#include "util/diag.h"
#include "incidents/incidents.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

// Descriptors up to the hard limit: a host agent holds the root of every
// containerised process it follows (their files are opened through it), and
// 1024, the usual soft limit, is soon reached on a busy host.  fh-bpf
// polls with epoll only, so a descriptor's number never matters.
void raise_descriptor_limit()
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

} // namespace

namespace fh {

// --cache-dir: a directory that cannot be used (fh-bpf is not root, say)
// costs time only, said with -v.
void use_caches(const Options &opts)
{
	if (opts.cache_dir.empty())
		return;
	try {
		DebugCache::set_global(std::make_unique<DebugCache>(opts.cache_dir + "/debug",
								    opts.debug_cache_bytes));
		CoreBtf::set_global(std::make_unique<CoreBtf>(opts.cache_dir));
	} catch (const Error &e) {
		if (opts.verbose)
			diag(std::string(e.what()) + ": nothing is kept for the next runs");
	}
}

} // namespace fh

int main(int argc, char **argv)
{
	// A closed stdout, stderr or pipe is an error to report, not a death.
	signal(SIGPIPE, SIG_IGN);
	std::vector<std::string> args(argv + 1, argv + argc);
	try {
		// Incidents kept, looked at after the fact: no watch, no BPF.
		if (!args.empty() && args[0] == "incidents")
			return fh::incidents_main({args.begin() + 1, args.end()});
		fh::Options opts = fh::parse_options(args);
		if (opts.help) {
			fh::write_all(STDOUT_FILENO, fh::usage_text());
			return fh::kExitOk;
		}
		if (opts.version) {
			fh::write_all(STDOUT_FILENO, fh::version_text());
			return fh::kExitOk;
		}
		fh::use_caches(opts);
		if (opts.system_wide) {
			// (Not in launch mode: the command would inherit it.)
			raise_descriptor_limit();
			return fh::run_agent(opts);
		}
		return opts.dump ? fh::dump(opts) : fh::watch(opts);
	} catch (const fh::Error &e) {
		fh::write_all(STDERR_FILENO, "fh-bpf: " + fh::printable(e.what(), 65536) + "\n");
		return e.status();
	} catch (const std::exception &e) {
		fh::write_all(STDERR_FILENO,
			      "fh-bpf: internal error: " + fh::printable(e.what(), 65536) + "\n");
		return fh::kExitFailure;
	}
}
