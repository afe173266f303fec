// A whole file's bytes as a string: the one reader of the tokenizer's
// vocabulary, the corpus text (train/data/text_loader.h) and report.html's inputs. A file
// that cannot be opened throws "tapegrad: <what> '<path>': <the OS's reason>".
#pragma once

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "core/tensor.h"

namespace tg::train {

inline std::string read_file(const std::string& path, const std::string& what) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("tapegrad: " + what + " '" + path + "': " + std::strerror(errno));
    std::ostringstream ss;
    ss << f.rdbuf();
    if (f.bad()) throw Error("tapegrad: " + what + " '" + path + "': a read error");
    return ss.str();
}

}  // namespace tg::train
