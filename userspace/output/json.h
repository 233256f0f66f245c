#pragma once

// The model as JSON (nlohmann-json): one incident record a line, the flood
// control summary, and the string policy they share.

#include "report/model.h"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace fh {

// Bytes as a JSON string's value: valid UTF-8 kept, every byte that is not
// part of it written as the text "\xHH" (a backslash, x, two hex digits),
// so nothing is lost and the JSON stays valid.
std::string json_text(const std::string &bytes);

// A JSON string literal for arbitrary bytes (json_text, quoted and escaped).
std::string json_string(const std::string &bytes);

// The incident as a JSON object: everything it says, and its faulthandler
// text.  Schema in the README ("Incident records").
// `text`, when given, is render_text(inc) made already (the writer's).
nlohmann::ordered_json incident_object(const Incident &inc, const std::string *text = nullptr);

// One line of JSON; DEL, which JSON lets pass raw, escaped too (it can only
// be inside a string): no byte of a record drives a terminal.
std::string dump_line(const nlohmann::ordered_json &j);

// The record as one line of JSON (no newline).
std::string incident_json(const Incident &inc, const std::string *text = nullptr);

// An incident record read back (output/json_read.cpp): the model as it was
// written, its text rendered again the same.  Strings come back as written
// (a byte that was not UTF-8 stays the text "\xHH").  Throws Error saying
// what is wrong with a line that is no incident record of a known schema.
Incident incident_from_json(std::string_view line);

} // namespace fh
