#include "util/signals.h"

#include <csignal>
#include <cstring>
#include <strings.h>

namespace fh {

namespace {

struct Named {
	int value;
	const char *name;
};

constexpr Named kSignals[] = {
	{SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},	{SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
	{SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},	{SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
	{SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"},	{SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
	{SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"},	{SIGTERM, "SIGTERM"}, {SIGSTKFLT, "SIGSTKFLT"},
	{SIGCHLD, "SIGCHLD"}, {SIGCONT, "SIGCONT"},	{SIGSTOP, "SIGSTOP"}, {SIGTSTP, "SIGTSTP"},
	{SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},	{SIGURG, "SIGURG"},   {SIGXCPU, "SIGXCPU"},
	{SIGXFSZ, "SIGXFSZ"}, {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"},
	{SIGIO, "SIGIO"},     {SIGPWR, "SIGPWR"},	{SIGSYS, "SIGSYS"},
};

// Codes common to every signal (include/uapi/asm-generic/siginfo.h).
constexpr Named kCommonCodes[] = {
	{0, "SI_USER"},	   {0x80, "SI_KERNEL"}, {-1, "SI_QUEUE"},   {-2, "SI_TIMER"},
	{-3, "SI_MESGQ"},  {-4, "SI_ASYNCIO"},	{-5, "SI_SIGIO"},   {-6, "SI_TKILL"},
	{-7, "SI_DETHREAD"}, {-8, "SI_ASYNCNL"},
};

constexpr Named kSegvCodes[] = {
	{1, "SEGV_MAPERR"}, {2, "SEGV_ACCERR"}, {3, "SEGV_BNDERR"}, {4, "SEGV_PKUERR"},
	{5, "SEGV_ACCADI"}, {6, "SEGV_ADIDERR"}, {7, "SEGV_ADIPERR"}, {8, "SEGV_MTEAERR"},
	{9, "SEGV_MTESERR"}, {10, "SEGV_CPERR"},
};
constexpr Named kBusCodes[] = {
	{1, "BUS_ADRALN"}, {2, "BUS_ADRERR"}, {3, "BUS_OBJERR"}, {4, "BUS_MCEERR_AR"},
	{5, "BUS_MCEERR_AO"},
};
constexpr Named kFpeCodes[] = {
	{1, "FPE_INTDIV"}, {2, "FPE_INTOVF"}, {3, "FPE_FLTDIV"}, {4, "FPE_FLTOVF"},
	{5, "FPE_FLTUND"}, {6, "FPE_FLTRES"}, {7, "FPE_FLTINV"}, {8, "FPE_FLTSUB"},
	{14, "FPE_FLTUNK"}, {15, "FPE_CONDTRAP"},
};
constexpr Named kIllCodes[] = {
	{1, "ILL_ILLOPC"}, {2, "ILL_ILLOPN"}, {3, "ILL_ILLADR"}, {4, "ILL_ILLTRP"},
	{5, "ILL_PRVOPC"}, {6, "ILL_PRVREG"}, {7, "ILL_COPROC"}, {8, "ILL_BADSTK"},
	{9, "ILL_BADIADDR"},
};

template <size_t N> const char *lookup(const Named (&table)[N], int value)
{
	for (const auto &n : table)
		if (n.value == value)
			return n.name;
	return nullptr;
}

} // namespace

std::string signal_abbrev(int sig)
{
	if (const char *n = lookup(kSignals, sig))
		return n;
	if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
	return "SIG" + std::to_string(sig);
}

std::string signal_description(int sig)
{
	switch (sig) {
	case SIGSEGV:
		return "Segmentation fault";
	case SIGFPE:
		return "Floating point exception";
	case SIGABRT:
		return "Aborted";
	case SIGBUS:
		return "Bus error";
	case SIGILL:
		return "Illegal instruction";
	default:
		break;
	}
	const char *d = strsignal(sig);
	return d ? d : signal_abbrev(sig);
}

std::string si_code_name(int sig, int si_code)
{
	const char *n = nullptr;
	if (si_code > 0 && si_code < 0x80) {
		switch (sig) {
		case SIGSEGV:
			n = lookup(kSegvCodes, si_code);
			break;
		case SIGBUS:
			n = lookup(kBusCodes, si_code);
			break;
		case SIGFPE:
			n = lookup(kFpeCodes, si_code);
			break;
		case SIGILL:
			n = lookup(kIllCodes, si_code);
			break;
		default:
			break;
		}
	} else {
		n = lookup(kCommonCodes, si_code);
	}
	return n ? n : "si_code " + std::to_string(si_code);
}

bool signal_has_fault_address(int sig, int si_code)
{
	if (si_code <= 0 || si_code >= 0x80)
		return false;
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL;
}

std::optional<int> parse_signal(const std::string &s)
{
	if (s.empty())
		return std::nullopt;
	if (s.find_first_not_of("0123456789") == std::string::npos) {
		if (s.size() > 3)
			return std::nullopt;
		int v = std::stoi(s);
		if (v >= 1 && v <= SIGRTMAX)
			return v;
		return std::nullopt;
	}
	std::string name = s;
	if (strncasecmp(name.c_str(), "SIG", 3) != 0)
		name = "SIG" + name;
	for (const auto &n : kSignals)
		if (strcasecmp(n.name, name.c_str()) == 0)
			return n.value;
	return std::nullopt;
}

} // namespace fh
