#include "app/flood.h"

#include "util/printable.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace fh {

namespace {

enum class Lang { none, python, perl, ruby, node, shell };

std::string_view base_name(std::string_view path)
{
	size_t slash = path.rfind('/');
	return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// The interpreter a file name is, by the names their packages install:
// python3.11, pypy3, perl5.36, ruby3.1, node, bash...
Lang language_of(std::string_view path)
{
	std::string_view n = base_name(path);
	auto versioned = [&](std::string_view stem) {
		return n.substr(0, stem.size()) == stem &&
		       n.find_first_not_of("0123456789.", stem.size()) == std::string_view::npos;
	};
	if (n.substr(0, 6) == "python" || n.substr(0, 4) == "pypy")
		return Lang::python;
	if (versioned("perl"))
		return Lang::perl;
	if (versioned("ruby"))
		return Lang::ruby;
	if (n == "node" || n == "nodejs")
		return Lang::node;
	for (std::string_view sh : {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash"})
		if (n == sh)
			return Lang::shell;
	return Lang::none;
}

// How an interpreter's command line names what it runs: the first word
// that is no option is the script; before it, options give code inline
// (the program is then that option, "-c"), name a module ("-m mod"), or
// take a value (the rest of their word, or the next word), which is no
// script.
struct Syntax {
	std::string_view code;	 // short options whose value is code
	std::string_view module; // short options whose value is the module run
	std::string_view valued; // other short options with a value
	std::vector<std::string_view> long_code, long_valued;
};

const Syntax &syntax_of(Lang lang)
{
	static const Syntax python{"c", "m", "WX", {}, {"--check-hash-based-pycs"}};
	static const Syntax perl{"eE", "", "IMm", {}, {}};
	static const Syntax ruby{"e", "", "ICEr", {}, {}};
	static const Syntax node{"ep", "", "rC", {"--eval", "--print"},
				 {"--require", "--import", "--loader", "--experimental-loader",
				  "--conditions", "--input-type", "--title"}};
	static const Syntax shell{"c", "", "oO", {}, {"--rcfile", "--init-file"}};
	switch (lang) {
	case Lang::python:
		return python;
	case Lang::perl:
		return perl;
	case Lang::ruby:
		return ruby;
	case Lang::node:
		return node;
	default:
		return shell;
	}
}

bool listed(const std::vector<std::string_view> &names, std::string_view name)
{
	return std::find(names.begin(), names.end(), name) != names.end();
}

// What an interpreter runs, from its arguments: a script's path as given,
// "-m mod", "-c", "-" (its standard input); empty when nothing (a REPL).
std::string program_argument(Lang lang, const std::vector<std::string> &argv)
{
	const Syntax &sx = syntax_of(lang);
	for (size_t i = 1; i < argv.size(); i++) {
		const std::string &a = argv[i];
		// A shell's "+o name" and "+x" are options too.
		bool plus = lang == Lang::shell && a.size() > 1 && a[0] == '+';
		if (a == "-")
			return a;
		if (a == "--")
			return i + 1 < argv.size() ? argv[i + 1] : std::string();
		if (a.size() < 2 || (a[0] != '-' && !plus))
			return a;
		if (a[1] == '-') {
			std::string_view name = std::string_view(a).substr(0, a.find('='));
			if (listed(sx.long_code, name))
				return std::string(name);
			if (name.size() == a.size() && listed(sx.long_valued, name))
				i++;
			continue;
		}
		// A cluster of short options ("-Ic", "-um", "-Wignore").
		for (size_t j = 1; j < a.size(); j++) {
			char c = a[j];
			std::string rest = a.substr(j + 1);
			if (!plus && sx.code.find(c) != std::string_view::npos)
				return std::string("-") + c;
			if (!plus && sx.module.find(c) != std::string_view::npos) {
				std::string option = std::string("-") + c;
				if (!rest.empty())
					return option + " " + rest;
				return i + 1 < argv.size() ? option + " " + argv[i + 1] : option;
			}
			if (sx.valued.find(c) != std::string_view::npos) {
				if (rest.empty())
					i++;
				break;
			}
		}
	}
	return "";
}

} // namespace

std::string program_identity(const std::string &exe, const std::vector<std::string> &cmdline,
			     const std::string &comm)
{
	std::string prog = !exe.empty()				   ? exe
			   : !cmdline.empty() && !cmdline[0].empty() ? cmdline[0]
								     : std::string();
	if (prog.empty())
		return "[" + comm + "]";
	Lang lang = language_of(prog);
	if (lang == Lang::none || cmdline.empty())
		return prog;
	// Renamed (setproctitle), or started under a name of its own: that
	// name tells it apart better than what follows.
	if (language_of(cmdline[0]) != lang)
		return prog + " " + cmdline[0];
	std::string what = program_argument(lang, cmdline);
	return what.empty() ? prog : prog + " " + what;
}

std::string command_line_text(const std::vector<std::string> &cmdline)
{
	std::string out;
	for (const auto &a : cmdline) {
		if (!out.empty())
			out += ' ';
		if (!a.empty() && a.find_first_of(" \t'\"") == std::string::npos) {
			out += a;
			continue;
		}
		out += '\'';
		for (char c : a)
			out += c == '\'' ? std::string("'\\''") : std::string(1, c);
		out += '\'';
	}
	return printable(out);
}

bool FloodControl::take(std::map<std::string, Bucket> &buckets, const std::string &key,
			const Rate &r, uint64_t now, bool commit)
{
	if (r.count == 0)
		return true;
	Bucket &b = buckets[key];
	if (b.fresh) {
		b.fresh = false;
		b.tokens = r.count;
		b.last_ns = now;
	}
	if (now > b.last_ns) {
		b.tokens = std::min<double>(r.count, b.tokens + static_cast<double>(now - b.last_ns) *
							       r.count / static_cast<double>(r.window_ns));
		b.last_ns = now;
	}
	if (b.tokens < 1)
		return false;
	if (commit)
		b.tokens -= 1;
	return true;
}

bool FloodControl::admit(const Subject &who, const std::string &what, uint64_t now)
{
	std::string pkey = std::to_string(who.pid);
	prune(by_process_, process_, now, prune_process_);
	prune(by_program_, program_, now, prune_program_);
	// Both must have room; only then is a token taken from each.
	if (take(by_process_, pkey, process_, now, false) &&
	    take(by_program_, who.program, program_, now, false)) {
		take(by_process_, pkey, process_, now, true);
		take(by_program_, who.program, program_, now, true);
		return true;
	}
	count(who, what, now);
	return false;
}

void FloodControl::count(const Subject &who, const std::string &what, uint64_t now)
{
	Summary &s = pending_[who.program];
	if (!s.suppressed) {
		s.program = who.program;
		s.comm = who.comm;
		s.first_ns = now;
	}
	s.suppressed++;
	s.last_ns = now;
	if (std::find(s.pids.begin(), s.pids.end(), who.pid) == s.pids.end()) {
		if (s.pids.size() < kPidsNamed)
			s.pids.push_back(who.pid);
		else
			s.more_pids = true;
	}
	if (!who.cmdline.empty() &&
	    std::find(s.cmdlines.begin(), s.cmdlines.end(), who.cmdline) == s.cmdlines.end()) {
		if (s.cmdlines.size() < kCmdlinesNamed)
			s.cmdlines.push_back(who.cmdline);
		else
			s.more_cmdlines = true;
	}
	s.what[what]++;
	total_++;
}

// A bucket a whole window untouched is full again: the same as none, so it
// goes. Looked at once a window, and when the map has doubled since the
// last look: a host whose processes (and programs: any user may start
// scripts of any name) keep changing keeps buckets for about one window's
// worth of them.
void FloodControl::prune(std::map<std::string, Bucket> &buckets, const Rate &r, uint64_t now,
			 Pruning &p)
{
	if (buckets.size() < p.at && now - p.last_ns < r.window_ns)
		return;
	for (auto it = buckets.begin(); it != buckets.end();) {
		if (now >= it->second.last_ns && now - it->second.last_ns >= r.window_ns)
			it = buckets.erase(it);
		else
			++it;
	}
	p.at = std::max<size_t>(kPruneMin, 2 * buckets.size());
	p.last_ns = now;
}

std::vector<FloodControl::Summary> FloodControl::take_summaries(uint64_t now, bool force)
{
	std::vector<Summary> out;
	uint64_t window = std::max(process_.window_ns, program_.window_ns);
	for (auto it = pending_.begin(); it != pending_.end();) {
		if (force || now - it->second.first_ns >= window) {
			out.push_back(std::move(it->second));
			it = pending_.erase(it);
		} else {
			++it;
		}
	}
	return out;
}

std::string FloodControl::describe(const Summary &s)
{
	std::string out = "held back " + std::to_string(s.suppressed) +
			  (s.suppressed == 1 ? " incident of " : " incidents of ") +
			  printable(s.program) + " (";
	bool first = true;
	for (const auto &[what, n] : s.what) {
		out += (first ? "" : ", ") + what + " " + std::to_string(n);
		first = false;
	}
	char buf[64];
	std::snprintf(buf, sizeof(buf), ") over %.1f s", (s.last_ns - s.first_ns) / 1e9);
	out += buf;
	out += ": pids";
	for (size_t i = 0; i < s.pids.size(); i++)
		out += (i ? ", " : " ") + std::to_string(s.pids[i]);
	if (s.more_pids)
		out += ", ...";
	if (s.cmdlines.empty())
		return out;
	out += s.cmdlines.size() > 1 ? "; command lines: " : "; command line: ";
	for (size_t i = 0; i < s.cmdlines.size(); i++)
		out += (i ? " | " : "") + command_line_text(s.cmdlines[i]);
	if (s.more_cmdlines)
		out += " | ...";
	return out;
}

} // namespace fh
