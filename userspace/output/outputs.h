#pragma once


#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace fh {

struct Counters;
class Assembler;

// What a watch lost, counted: rendered once, at the edge, as one list ("3
// thread records (ring buffer full), 1 ...") for the closing line, or as
// {what: count} for --stats-fd.  Zero counts are left out.
class LossList {
public:
	struct Item {
		uint64_t count;
		std::string what;
	};
	void add(uint64_t n, const std::string &what);
	std::string text() const;
	bool empty() const { return items_.empty(); }
	const std::vector<Item> &items() const { return items_; }

private:
	std::vector<Item> items_;
};

// The losses every capture can have: records the ring or a table had no
// room for, malformed or orphaned records.
void add_capture_losses(LossList &l, const Counters &c, const Assembler &a);

// Messages about what targets name (their files, their interpreters) said
// on stderr once per key, and at most `max` keys: a user can make up any
// number of names.  Past them, one line says the others are counted.
class OnceMessages {
public:
	OnceMessages(size_t max, std::string what) : max_(max), what_(std::move(what)) {}
	void say(const std::string &key, const std::string &msg);
	uint64_t unsaid() const { return unsaid_; }

private:
	size_t max_;
	std::string what_;
	std::set<std::string> said_;
	uint64_t unsaid_ = 0;
};

} // namespace fh
