#pragma once

// Building and bounding the one model (report/model.h): an event's facts
// copied in, its size held to kIncidentMaxBytes whatever a target named.

#include "report/model.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace fh {

// The incident of `ev`, of the process `meta` describes: time (from the
// capture's stamp), host, kernel and the event's facts (trigger, pid,
// thread, signal, sender, what the capture lost) filled in; the traceback
// left to the caller.
Incident make_incident(const Event &ev, const ProcessMeta &meta);

// "2026-12-01T10:31:07.123456Z"
std::string utc_time(uint64_t realtime_ns);

// A file name stem: "20261201T103107.123456Z-crash-4242-SIGSEGV" (the
// trigger for a dump: "timeout", "dump"); only [A-Za-z0-9._-] in it.
std::string incident_stem(const Incident &inc);

// The same from its parts: UTC time, command name, pid, what happened.
std::string file_stem(uint64_t realtime_ns, const std::string &comm, uint32_t pid,
		      const std::string &what);

// The trigger's name in records: "fatal_signal", "user_signal", "timeout",
// "demand".
std::string trigger_name(uint32_t trigger);


// Cut text to at most max_bytes, at a line's end, "...\n" after; returns
// the bytes left out (0: text was within max_bytes).
size_t cut_text(std::string &text, size_t max_bytes);

// Leave out the frames (then whole threads) past what max_bytes of their
// strings hold, each thread cut marked truncated; returns the frames left
// out.
uint64_t cut_threads(std::vector<Thread> &threads, size_t max_bytes);

// The incident's threads held to kIncidentMaxBytes, a loss added on what
// was cut; false when nothing was.
bool bound_threads(Incident &inc);

// A loss added when its faulthandler text is longer than its text_limit
// (render_text cuts it there); false when it is not.
bool bound_text(Incident &inc);

// The incident held to max_bytes for a record of that size: text and
// threads a third each, extension modules a tenth; its losses say what
// was cut.  (JSON may add escapes: the caller checks the result.)
Incident cut_incident(const Incident &inc, size_t max_bytes);

} // namespace fh
