#pragma once

// --syslog with --format json: a record too long for one syslog message is
// sent in parts that each parse as a JSON object on their own, and that
// give the record back, value for value, by one rule (README, "Outputs"):
//
//   {"incident": ID, "part": 1, "parts": N, "record": R}
//   {"incident": ID, "part": K, "parts": N, "at": POINTER, "append": V}
//
// R is the record with its "threads" list and "text" emptied (and any
// other list, string or object's lists and strings that leave no room);
// each later part, in order, appends V to the list (V's elements) or the
// string (V itself) that POINTER (RFC 6901) names in the record rebuilt so
// far.  Threads go several to a part; a thread too long for one goes as
// itself with its frames emptied, then its frames, several to a part; a
// frame too long, as itself with its longest strings emptied, then their
// pieces; the text in pieces, cut after a newline where one is near the
// end of a piece.  A record that fits is one message: the record itself.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace fh {

// The parts of `record` (one object, as dump_line writes it, each) for
// messages of at most max_bytes; `id` names the record in each part.  A
// part is longer only when what cannot be emptied is: an object's names,
// numbers, booleans and nulls (an incident record's come to some 500
// bytes with the part's own fields, a frame's to some 250).  The work is
// linear in the record's size (times its depth).
std::vector<std::string> split_json_record(const nlohmann::ordered_json &record,
					   const std::string &id, size_t max_bytes);

// The record its parts give (in any order); a single part that is no part
// is the record itself.  Throws Error saying what is wrong with parts that
// do not make one record.
nlohmann::ordered_json join_json_parts(const std::vector<nlohmann::ordered_json> &parts);

} // namespace fh
