#include "train/io/json_text.h"

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "models/safetensors.h"

namespace tg::train {

std::string json_text(const nlohmann::json& j, const std::string& what, int indent) {
    try {
        return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
    } catch (const std::exception& e) {  // replace never throws on bytes; anything else is named
        throw Error("tapegrad: writing '" + what + "': " + e.what());
    }
}

void write_json_file(const std::string& path, const nlohmann::json& j, int indent) {
    std::string text = json_text(j, path, indent) + "\n";
    try {
        models::write_file_atomic(path, text);
    } catch (const Error&) {
        throw;  // already names the file and the OS's reason
    } catch (const std::exception& e) {
        throw Error("tapegrad: writing '" + path + "': " + e.what());
    }
}

}  // namespace tg::train
