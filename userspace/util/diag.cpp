#include "util/diag.h"

#include "util/fd.h"
#include "util/printable.h"

#include <unistd.h>

#include <cstdio>

namespace fh {

void diag(const std::string &msg)
{
	write_all(STDERR_FILENO, "fh-bpf: " + printable(msg, 65536) + "\n");
}

std::string fmt(const char *format, double v)
{
	char buf[64];
	std::snprintf(buf, sizeof(buf), format, v);
	return buf;
}

void OnceMessages::say(const std::string &key, const std::string &msg)
{
	if (said_.count(key))
		return;
	if (said_.size() >= max_) {
		if (unsaid_++ == 0)
			diag(what_ + " are counted, not said (see the closing line)");
		return;
	}
	said_.insert(key);
	diag(msg);
}

} // namespace fh
