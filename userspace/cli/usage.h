#pragma once

#include "cli/option_table.h"

#include <span>

namespace fh {

// The options of a watch (fh-bpf -p PID, -- COMMAND, --system-wide), as
// the parser is given them: the short letter for those that have one.
enum WatchOption : int {
	kOptPid = 'p',
	kOptSystemWide = 'a',
	kOptOutput = 'o',
	kOptVerbose = 'v',
	kOptHelp = 'h',
	kOptComm = kLongOnly,
	kOptExcludeComm,
	kOptUid,
	kOptCgroup,
	kOptTimeout,
	kOptRepeat,
	kOptExit,
	kOptSignal,
	kOptNoSignal,
	kOptSignals,
	kOptHandled,
	kOptDump,
	kOptStackSize,
	kOptMaxThreads,
	kOptFormat,
	kOptLogDir,
	kOptLogKeep,
	kOptLogMaxSize,
	kOptSyslog,
	kOptSyslogSocket,
	kOptSyslogMaxSize,
	kOptRateLimit,
	kOptProcessRateLimit,
	kOptReadyFd,
	kOptStatsFd,
	kOptVersion,
	kOptNoChildren,
	kOptNative,
	kOptNativeAll,
	kOptCacheDir,
	kOptDebugCacheSize,
};

// Their table, in --help's order: what --help says and what getopt takes.
std::span<const OptionRow> watch_options();

} // namespace fh
