#pragma once

// The model as JSON (nlohmann-json): one incident record a line, the flood
// control summary, and the string policy they share.

#include "report/model.h"

#include <nlohmann/json.hpp>

#include <string>

namespace fh {

// Bytes as a JSON string's value: valid UTF-8 kept, every byte that is not
// part of it written as the text "\xHH" (a backslash, x, two hex digits),
// so nothing is lost and the JSON stays valid.
std::string json_text(const std::string &bytes);

// A JSON string literal for arbitrary bytes (json_text, quoted and escaped).
std::string json_string(const std::string &bytes);

// The incident as a JSON object: everything it says, and its faulthandler
// text.  Schema in the README ("Incident records").
nlohmann::ordered_json incident_object(const Incident &inc);

// The record as one line of JSON (no newline).
std::string incident_json(const Incident &inc);

} // namespace fh
