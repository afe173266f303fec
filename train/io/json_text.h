// The one writer of the JSON the project produces (summary.json, done.json,
// the sweep's files, manifests, wall_time.json, checkpoint metadata, the JSON
// inside report.html).
//
// Any bytes survive: a string holding bytes that are no UTF-8 (a GPT-2 sample
// is byte-level tokens and may cut a character in two) is written with U+FFFD
// in their place (nlohmann's error_handler_t::replace), as the tokenizer does
// for the terminal, never thrown on. What must stay exact is kept beside the
// text by the caller (a sample's token ids, `sample_ids`).
//
// Any exception of the library is rethrown naming what was being written:
// "tapegrad: writing '<what>': <the library's message>".
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace tg::train {

// j as text (indent < 0: one line); `what` names it in an error.
std::string json_text(const nlohmann::json& j, const std::string& what, int indent = -1);

// json_text(j, path, indent) and a newline, written atomically to path.
void write_json_file(const std::string& path, const nlohmann::json& j, int indent = 2);

}  // namespace tg::train
