#pragma once

// --stats-fd FD: fh-bpf's own timings as JSON lines, for benchmarks (no
// prose to parse).  One object a line, each with "type":
//
//   armed  {pid, bpf_ns, symbols_ns, armed_ns}: from the start of the watch
//          to the programs attached, debug information loaded (in parallel),
//          and armed
//   event  {event, pid, trigger, threads, python_threads, code_objects,
//          stack_bytes, record_bytes, capture_ns, prepare_ns, symbolize_ns,
//          write_ns, trigger_to_written_ns}; for a live dump {iterate_ns,
//          sample_ns, samples_wanted, samples_missing}, for a one-shot dump
//          {bpf_ns}
//   end    {incidents, max_rss_kb, losses: {what: count}}
//
// Times are nanoseconds of CLOCK_MONOTONIC differences.  Schema in the
// README ("Timings").

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace fh {

class LossList;

class StatsChannel {
public:
	explicit StatsChannel(int fd) : fd_(fd) {}
	bool on() const { return fd_ >= 0; }
	// One object, its "type" first; nothing when the channel is off.
	void emit(const std::string &type, const nlohmann::ordered_json &fields);
	// The closing object: incidents written, peak RSS, and the losses.
	void end(uint64_t incidents, const LossList &lost);

private:
	int fd_;
};

} // namespace fh
