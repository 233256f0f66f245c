// libFuzzer harness: the command line (userspace/cli/: getopt_long by the
// option table, then the checks of the whole) and the value parsers behind
// it: sizes, seconds, signals, lists.
//
// Input: the arguments, separated by NUL bytes (at most 64 of them).
// Checked: a bad command line is an Error with the usage status and a
// one-line reason, never another exception; what parses is within the
// documented ranges.
#include "util/error.h"
#include "fuzz_input.h"
#include "cli/options.h"
#include "util/signals.h"
#include "util/strings.h"

using namespace fh;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::vector<std::string> args;
	std::string cur;
	for (size_t i = 0; i < size && args.size() < 64; i++) {
		if (data[i] == 0) {
			args.push_back(std::move(cur));
			cur.clear();
		} else {
			cur += static_cast<char>(data[i]);
		}
	}
	if (args.size() < 64)
		args.push_back(cur);

	try {
		Options o = parse_options(args);
		FUZZ_CHECK(o.stack_size <= (256u << 10));
		FUZZ_CHECK(o.timeout_us <= kMaxTimeoutUs);
		FUZZ_CHECK(o.user_signal >= 0 && o.user_signal <= 64);
		if (o.timeout_us)
			FUZZ_CHECK(timeout_header(o.timeout_us).find('\n') != std::string::npos);
	} catch (const Error &e) {
		std::string what = e.what();
		FUZZ_CHECK(e.status() == kExitUsage);
		FUZZ_CHECK(!what.empty());
	}
	// (Any other exception escapes: libFuzzer reports it as a crash.)

	for (const auto &a : args) {
		uint64_t v = 0;
		parse_size(a, v);
		uint64_t us = 0;
		if (parse_seconds(a, us)) {
			FUZZ_CHECK(us > 0 && us <= kMaxTimeoutUs);
			timeout_header(us);
		}
		if (auto sig = parse_signal(a)) {
			FUZZ_CHECK(*sig >= 1 && *sig <= 64);
			signal_abbrev(*sig);
			signal_description(*sig);
		}
		split(a, ',');
	}
	return 0;
}
