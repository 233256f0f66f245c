#include "output/syslog_json.h"

#include "output/json.h"
#include "util/error.h"
#include "util/printable.h"

#include <algorithm>
#include <string_view>
#include <utility>

namespace fh {

namespace {

using json = nlohmann::ordered_json;

// Part numbers while the parts are made: as wide as any final one, so a
// part's size is known before their count is.
constexpr uint64_t kPartPlaceholder = 9'999'999;

size_t dumped_size(const json &v) { return dump_line(v).size(); }

// What a byte of a JSON string takes as dump_line escapes it.
size_t escaped_size(unsigned char c)
{
	switch (c) {
	case '"':
	case '\\':
	case '\b':
	case '\f':
	case '\n':
	case '\r':
	case '\t':
		return 2;
	default:
		return c < 0x20 || c == 0x7f ? 6 : 1;
	}
}

// A key as a JSON Pointer's reference token (RFC 6901: "~" and "/" escaped).
std::string pointer_token(const std::string &key)
{
	std::string out;
	for (char c : key)
		out += c == '~'	  ? std::string("~0")
		       : c == '/' ? std::string("~1")
				  : std::string(1, c);
	return out;
}

// What was emptied in a value's shell, to be appended after it: the whole
// value (a list, a string), or some of the object's members (each emptied
// whole, or an object with members of its own emptied), in its order.
struct EmptiedMember;

struct Emptied {
	bool whole = false;
	std::vector<EmptiedMember> members; // (a vector of a type completed below)
	bool any() const { return whole || !members.empty(); }
};

struct EmptiedMember {
	std::string key;
	Emptied emptied;
};

class Splitter {
public:
	Splitter(const std::string &id, size_t max_bytes) : id_(id), max_(max_bytes) {}

	// The record's head, then what it left out.
	void record(const json &r)
	{
		json probe = {{"incident", id_},
			      {"part", kPartPlaceholder},
			      {"parts", kPartPlaceholder},
			      {"record", json::object()}};
		size_t room = fit(dumped_size(probe) - 2);
		Emptied e;
		json head = shell(r, room, {"threads", "text"}, e);
		probe["record"] = std::move(head);
		parts_.push_back(std::move(probe));
		contents("", r, e);
	}

	std::vector<std::string> finish()
	{
		std::vector<std::string> out;
		for (size_t k = 0; k < parts_.size(); k++) {
			parts_[k]["part"] = k + 1;
			parts_[k]["parts"] = parts_.size();
			out.push_back(dump_line(parts_[k]));
		}
		return out;
	}

private:
	json append_part(const std::string &at, json value) const
	{
		return {{"incident", id_},
			{"part", kPartPlaceholder},
			{"parts", kPartPlaceholder},
			{"at", at},
			{"append", std::move(value)}};
	}
	// Bytes left in a part that takes `used` already.
	size_t fit(size_t used) const { return max_ > used ? max_ - used : 0; }

	void elements(const std::string &at, const json &list);
	void string(const std::string &at, const std::string &s);
	json shell(const json &v, size_t room, std::initializer_list<std::string_view> force,
		   Emptied &e) const;
	void contents(const std::string &at, const json &v, const Emptied &e);

	std::string id_;
	size_t max_;
	std::vector<json> parts_;
};

// v as it goes first: a list or string too long, empty; an object with
// members emptied (those forced, then the ones that save the most: lists,
// strings, objects in turn shelled to the least they can be) until it
// takes at most `room` bytes.  What was emptied is in `e`.
json Splitter::shell(const json &v, size_t room, std::initializer_list<std::string_view> force,
		     Emptied &e) const
{
	if (v.is_array() || v.is_string()) {
		e.whole = true;
		return v.is_array() ? json::array() : json("");
	}
	if (!v.is_object())
		return v;
	struct Member {
		std::string key;
		size_t saves;
		bool forced;
		json least;
		Emptied emptied;
	};
	std::vector<Member> members;
	for (auto it = v.begin(); it != v.end(); ++it) {
		const json &m = it.value();
		if (!m.is_array() && !m.is_string() && !m.is_object())
			continue;
		Member c{it.key(), 0,
			 std::find(force.begin(), force.end(), it.key()) != force.end(), {}, {}};
		c.least = shell(m, 0, {}, c.emptied);
		size_t size = dumped_size(m), least = dumped_size(c.least);
		if (!c.emptied.any() || size <= least)
			continue;
		c.saves = size - least;
		members.push_back(std::move(c));
	}
	// Forced first, then what saves the most; a stable order for ties.
	std::stable_sort(members.begin(), members.end(), [](const Member &a, const Member &b) {
		return a.forced != b.forced ? a.forced : a.saves > b.saves;
	});
	json s = v;
	size_t size = dumped_size(v);
	std::vector<EmptiedMember> out;
	for (auto &m : members) {
		if (!m.forced && size <= room)
			break;
		s[m.key] = std::move(m.least);
		size -= m.saves;
		out.push_back({m.key, std::move(m.emptied)});
	}
	for (auto it = v.begin(); it != v.end(); ++it)
		for (auto &o : out)
			if (o.key == it.key())
				e.members.push_back(std::move(o));
	return s;
}

// What v's shell left out, after it: appended at `at` (v's pointer).
void Splitter::contents(const std::string &at, const json &v, const Emptied &e)
{
	if (e.whole) {
		if (v.is_array())
			elements(at, v);
		else
			string(at, v.get_ref<const std::string &>());
		return;
	}
	for (const auto &m : e.members)
		contents(at + "/" + pointer_token(m.key), v.at(m.key), m.emptied);
}

// A list's elements appended at `at` (an empty list in the record rebuilt
// so far), as many a part as fit; one too long goes as its shell, then its
// contents.
void Splitter::elements(const std::string &at, const json &list)
{
	size_t room = fit(dumped_size(append_part(at, json::array())) - 2);
	json batch = json::array();
	size_t used = 0;
	auto flush = [&] {
		if (!batch.empty())
			parts_.push_back(append_part(at, std::move(batch)));
		batch = json::array();
		used = 0;
	};
	for (size_t i = 0; i < list.size(); i++) {
		const json &el = list[i];
		size_t size = dumped_size(el);
		Emptied e;
		json shelled;
		if (size > room) {
			shelled = shell(el, room, {}, e);
			size = dumped_size(shelled);
		}
		if (!batch.empty() && used + 1 + size > room)
			flush();
		used += size + (batch.empty() ? 0 : 1);
		batch.push_back(e.any() ? std::move(shelled) : el);
		if (e.any()) {
			// Its contents right after the part that holds it.
			flush();
			contents(at + "/" + std::to_string(i), el, e);
		}
	}
	flush();
}

// A string appended at `at` in pieces, each as long as a part takes (at
// least one character), cut after a newline in the last quarter of a
// piece's room if there is one, never inside a UTF-8 character.  Bytes
// after such a newline are looked at twice at most: linear.
void Splitter::string(const std::string &at, const std::string &s)
{
	size_t room = fit(dumped_size(append_part(at, "")));
	for (size_t from = 0; from < s.size();) {
		size_t used = 0, i = from, newline = 0;
		while (i < s.size()) {
			size_t n = utf8_length(s, i);
			n = n ? n : 1;
			size_t cost = n == 1 ? escaped_size(static_cast<unsigned char>(s[i])) : n;
			if (used + cost > room && i > from)
				break;
			used += cost;
			i += n;
			if (s[i - 1] == '\n' && used * 4 >= room * 3)
				newline = i;
		}
		size_t cut = i < s.size() && newline ? newline : i;
		parts_.push_back(append_part(at, s.substr(from, cut - from)));
		from = cut;
	}
}

[[noreturn]] void bad_parts(const std::string &why) { throw Error("syslog parts: " + why); }

} // namespace

std::vector<std::string> split_json_record(const json &record, const std::string &id,
					   size_t max_bytes)
{
	std::string whole = dump_line(record);
	if (whole.size() <= max_bytes)
		return {whole};
	Splitter s(id, max_bytes);
	s.record(record);
	return s.finish();
}

json join_json_parts(const std::vector<json> &parts)
{
	if (parts.empty())
		bad_parts("none");
	if (parts.size() == 1 && parts[0].is_object() && !parts[0].contains("part"))
		return parts[0];
	std::vector<const json *> order(parts.size(), nullptr);
	try {
		for (const auto &p : parts) {
			uint64_t k = p.at("part").get<uint64_t>();
			if (p.at("parts").get<uint64_t>() != parts.size())
				bad_parts(std::to_string(parts.size()) + " parts, part " +
					  std::to_string(k) + " says " + p.at("parts").dump());
			if (p.at("incident") != parts[0].at("incident"))
				bad_parts("parts of two records");
			if (k < 1 || k > parts.size() || order[k - 1])
				bad_parts("part " + std::to_string(k) + " twice or out of range");
			order[k - 1] = &p;
		}
		json r = order[0]->at("record");
		for (size_t k = 1; k < order.size(); k++) {
			const json &p = *order[k];
			json &into = r.at(json::json_pointer(p.at("at").get<std::string>()));
			const json &v = p.at("append");
			if (into.is_array() && v.is_array())
				into.insert(into.end(), v.begin(), v.end());
			else if (into.is_string() && v.is_string())
				into.get_ref<std::string &>() += v.get_ref<const std::string &>();
			else
				bad_parts("part " + std::to_string(k + 1) + " appends a " +
					  v.type_name() + " to a " + into.type_name());
		}
		return r;
	} catch (const json::exception &e) {
		bad_parts(e.what());
	}
}

} // namespace fh
