#include "incidents/incidents.h"

#include "output/json.h"
#include "report/text.h"
#include "symbolize/offline.h"
#include "util/diag.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/printable.h"

#include <unistd.h>

namespace fh {

namespace {

// A text file as fh-bpf wrote it, each line made safe again: the file may
// not be fh-bpf's.
std::string safe_text(const std::string &text)
{
	std::string out;
	for (size_t at = 0; at < text.size();) {
		size_t nl = text.find('\n', at);
		size_t end = nl == std::string::npos ? text.size() : nl;
		out += printable(std::string_view(text).substr(at, end - at), end - at) + "\n";
		at = end + 1;
	}
	return out;
}

} // namespace

int run_show(const IncidentsOptions &opts)
{
	StoredIncident s = find_incident(opts.what, opts.record, opts.log_dir);
	if (!s.json) {
		if (opts.json || !opts.debug_dirs.empty())
			throw Error(s.id + ": a text record (the agent ran without --format json): "
					   "it can be shown only as it is",
				    0, kExitUsage);
		write_all(STDOUT_FILENO, safe_text(s.text));
		return kExitOk;
	}
	// Every native frame whose module's debug file can now be found.
	OfflineSymbolizer symbolizer(opts.debug_dirs);
	symbolizer.resymbolize(s.inc);
	std::string out = opts.json ? incident_json(s.inc) + "\n"
				    : headline(s.inc) + render_text(s.inc) + loss_lines(s.inc) +
					      symbol_hint(s.inc);
	if (!write_all(STDOUT_FILENO, out))
		throw sys_error("writing the incident", errno);
	if (!symbolizer.debuginfod_error().empty()) {
		diag(symbolizer.debuginfod_error());
		return kExitFailure;
	}
	return kExitOk;
}

} // namespace fh
