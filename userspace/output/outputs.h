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

} // namespace fh
