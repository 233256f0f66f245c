#include "cli/option_table.h"

#include "util/strings.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace fh {

namespace {

// Where the help of an option starts, in --help.
constexpr size_t kHelpColumn = 25;

// "  -p, --pid PID", "      --comm NAME", "  -- COMMAND [ARGS...]".
std::string spelling(const OptionRow &row)
{
	if (row.kind == OptionRow::operands)
		return std::string("  ") + row.name;
	std::string s = row.id < kLongOnly ? std::string("  -") + static_cast<char>(row.id) + ", "
					   : std::string(6, ' ');
	s += std::string("--") + row.name;
	if (row.arg)
		s += std::string(" ") + row.arg;
	return s;
}

std::string row_help(const OptionRow &row)
{
	std::vector<std::string> lines = split(row.help, '\n');
	std::string out;
	if (row.kind == OptionRow::text) {
		for (const auto &line : lines)
			out += "  " + line + "\n";
		return out;
	}
	out = spelling(row);
	if (lines[0].empty()) // the spelling is long: the text starts below it
		out += "\n";
	else
		out += std::string(out.size() < kHelpColumn ? kHelpColumn - out.size() : 2, ' ') +
		       lines[0] + "\n";
	for (size_t i = 1; i < lines.size(); i++)
		out += std::string(kHelpColumn, ' ') + lines[i] + "\n";
	return out;
}

bool all_digits(const std::string &s)
{
	return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

// Whether word spells row's option in full, as one word: "--pid",
// "--pid=1" but not "--pi" or "--pid="; "-p", "-p=1" and, for a number,
// "-p1", but not "-pv" or "-vp1".
bool spelled_in_full(const OptionRow &row, const std::string &word)
{
	if (word.compare(0, 2, "--") == 0) {
		size_t eq = word.find('=');
		return word.compare(2, eq == std::string::npos ? eq : eq - 2, row.name) == 0 &&
		       (eq == std::string::npos || eq + 1 < word.size());
	}
	if (word.size() == 2)
		return true;
	std::string attached = word.substr(2);
	return row.arg && ((attached.size() > 1 && attached[0] == '=') ||
			   (row.attached_number && all_digits(attached)));
}

} // namespace

std::string options_help(std::span<const OptionRow> rows)
{
	std::string out;
	const char *group = nullptr;
	for (const auto &row : rows) {
		if (!group || std::strcmp(group, row.group) != 0) {
			group = row.group;
			out += std::string("\n") + group + ":\n";
		}
		out += row_help(row);
	}
	return out;
}

Error usage_error(const std::string &reason)
{
	return Error(reason + " (see fh-bpf --help)", EINVAL, kExitUsage);
}

OptionScanner::OptionScanner(const std::vector<std::string> &args, std::span<const OptionRow> rows)
	: rows_(rows), args_(args)
{
	// "+": the options end at the first operand (a command's own options
	// are never read as fh-bpf's); ":": a missing value is told apart.
	optstring_ = "+:";
	for (const auto &row : rows_) {
		if (row.kind != OptionRow::option)
			continue;
		longopts_.push_back({row.name, row.arg ? required_argument : no_argument, nullptr, row.id});
		if (row.id < kLongOnly) {
			optstring_ += static_cast<char>(row.id);
			if (row.arg)
				optstring_ += ':';
		}
	}
	longopts_.push_back({nullptr, 0, nullptr, 0});
	static char program[] = "fh-bpf";
	argv_.push_back(program);
	for (auto &a : args_)
		argv_.push_back(a.data());
	argv_.push_back(nullptr);
}

const OptionRow &OptionScanner::row_of(int id) const
{
	for (const auto &row : rows_)
		if (row.kind == OptionRow::option && row.id == id)
			return row;
	throw std::logic_error("getopt returned " + std::to_string(id) + ", not in the table");
}

// The value of row's option, from the words themselves (a word is not cut
// at a NUL byte, as getopt's optarg would be): after "=" or the short letter
// in the word at args_[at - 1], or the next word.
std::string OptionScanner::value_of(const OptionRow &row, size_t at) const
{
	const std::string &word = args_[at - 1];
	if (!row.arg)
		return "";
	if (word.compare(0, 2, "--") == 0) {
		size_t eq = word.find('=');
		return eq == std::string::npos ? args_[at] : word.substr(eq + 1);
	}
	if (word.size() > 2)
		return word.substr(word[2] == '=' ? 3 : 2);
	return args_[at];
}

std::optional<OptionScanner::Found> OptionScanner::next()
{
	if (!started_) {
		optind = 0; // glibc: start afresh, forgetting any word left half read
		opterr = 0; // the reasons are fh-bpf's, in its words
		started_ = true;
	}
	size_t at = optind == 0 ? 1 : static_cast<size_t>(optind); // the word getopt reads
	int argc = static_cast<int>(args_.size()) + 1;
	int c = getopt_long(argc, argv_.data(), optstring_.c_str(), longopts_.data(), nullptr);
	if (c == -1) { // at an operand, after "--" or at the end
		after_separator_ = at <= args_.size() && args_[at - 1] == "--";
		operands_at_ = after_separator_ ? at : at - 1;
		return std::nullopt;
	}
	const std::string &word = args_[at - 1];
	// A value missing: only a word that spells the option in full asks
	// for one ("--pi" at the end is unknown).
	if (c == ':' && spelled_in_full(row_of(optopt), word))
		throw usage_error("option " + word + " needs a value");
	// A word getopt has not finished holds more than one option: -vp1.
	if (c == ':' || c == '?' || static_cast<size_t>(optind) == at ||
	    !spelled_in_full(row_of(c), word))
		throw usage_error("unknown option '" + word + "'");
	return Found{c, value_of(row_of(c), at)};
}

std::vector<std::string> OptionScanner::operands() const
{
	return {args_.begin() + static_cast<std::ptrdiff_t>(operands_at_), args_.end()};
}

} // namespace fh
