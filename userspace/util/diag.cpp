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

} // namespace fh
