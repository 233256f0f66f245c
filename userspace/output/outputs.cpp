#include "output/outputs.h"

#include "util/printable.h"

#include "capture/capture.h"
#include "util/error.h"
#include "capture/event.h"
#include "util/diag.h"
#include "report/incident.h"
#include "capture/records.h"
#include "output/sink.h"

#include <linux/types.h>
#include <unistd.h>

extern "C" {
#include "fh/records.h"
}

namespace fh {

void LossList::add(uint64_t n, const std::string &what)
{
	if (n)
		items_.push_back({n, what});
}

std::string LossList::text() const
{
	std::string out;
	for (const auto &i : items_)
		out += (out.empty() ? "" : ", ") + std::to_string(i.count) + " " + i.what;
	return out;
}

void add_capture_losses(LossList &l, const Counters &c, const Assembler &a)
{
	each_capture_loss(c, [&l](const char *, uint64_t n, const char *what) { l.add(n, what); });
	l.add(a.malformed(), "malformed records");
	l.add(a.orphans(), "records of events never begun");
	l.add(c.unassembled, "records outside the event loop");
}

} // namespace fh
