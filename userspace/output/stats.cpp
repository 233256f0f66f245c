#include "output/stats.h"

#include "output/outputs.h"
#include "util/fd.h"

#include <sys/resource.h>

namespace fh {

void StatsChannel::emit(const std::string &type, const nlohmann::ordered_json &fields)
{
	if (fd_ < 0)
		return;
	nlohmann::ordered_json o = {{"type", type}};
	o.update(fields);
	write_all(fd_, o.dump() + "\n");
}

void StatsChannel::end(uint64_t incidents, const LossList &lost)
{
	if (fd_ < 0)
		return;
	struct rusage ru = {};
	getrusage(RUSAGE_SELF, &ru);
	nlohmann::ordered_json losses = nlohmann::ordered_json::object();
	for (const auto &i : lost.items())
		losses[i.what] = i.count;
	emit("end", {{"incidents", incidents},
		     {"max_rss_kb", ru.ru_maxrss},
		     {"losses", std::move(losses)}});
}

} // namespace fh
