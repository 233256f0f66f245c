#pragma once

#include "util/error.h"

#include <getopt.h>

#include <optional>
#include <span>
#include <string>
#include <vector>

namespace fh {

// One line of a command's option table.  --help is written from the table
// and the command line is read by it (getopt_long), so no option can be
// documented and not taken, or taken and not documented.
struct OptionRow {
	enum Kind {
		option,	  // -p, --pid PID
		operands, // documented only: what follows "--" (-- COMMAND [ARGS...])
		text,	  // a note of --help among the options
	};
	Kind kind = option;
	const char *group = ""; // the heading of its part of --help
	// What the parser is given for it: the short letter (-p), or kLongOnly
	// and up for an option with a long spelling only.
	int id = 0;
	const char *name = nullptr; // the long spelling without "--"; operands: their spelling
	const char *arg = nullptr;  // the value's name in --help; nullptr: takes no value
	// The value may follow the short letter when it is digits only: -p1234.
	bool attached_number = false;
	// As printed, lines joined by '\n', beside the spelling; a first line
	// left empty puts the text below it.
	const char *help = "";
};

inline constexpr int kLongOnly = 256;

// The options part of --help: each group's heading, then its rows, in the
// order of the table (the rows of a group stand together).
std::string options_help(std::span<const OptionRow> rows);

// A usage error of the command line: exit status 2, a one-line reason.
Error usage_error(const std::string &reason);

// getopt_long over a command line by a table: its options one by one, in
// order, each spelled in full and in a word of its own (no abbreviation, no
// -vp1), until the first operand, a "--" or the end.  An unknown option or
// a missing value is a usage error in fh-bpf's words, not getopt's.
// getopt's state is global: one scan at a time, each starting afresh.
class OptionScanner {
public:
	struct Found {
		int id;
		std::string value;
	};

	OptionScanner(const std::vector<std::string> &args, std::span<const OptionRow> rows);
	OptionScanner(const OptionScanner &) = delete;
	OptionScanner &operator=(const OptionScanner &) = delete;

	// The next option and its value; nullopt once the options end.
	std::optional<Found> next();
	// Once they have ended: the arguments after them, and whether a "--"
	// ended them.
	std::vector<std::string> operands() const;
	bool after_separator() const { return after_separator_; }

private:
	const OptionRow &row_of(int id) const;
	std::string value_of(const OptionRow &row, size_t at) const;

	std::span<const OptionRow> rows_;
	std::vector<std::string> args_; // argv_[1...] point into these
	std::vector<char *> argv_;
	std::vector<struct option> longopts_;
	std::string optstring_;
	bool started_ = false;
	size_t operands_at_ = 0; // in args_
	bool after_separator_ = false;
};

} // namespace fh
