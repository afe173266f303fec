// Outputs never eat their inputs: a command refuses to write the file it reads.
// Two paths are one file when they name one inode (the same path, a symlink to
// it, a hard link): std::filesystem::equivalent compares device and inode.
// A missing output is never the input.
#pragma once

#include <fmt/format.h>

#include <filesystem>
#include <string>

#include "core/tensor.h"

namespace tg::train {

inline bool same_file(const std::string& a, const std::string& b) {
    std::error_code ec;
    return !a.empty() && !b.empty() && std::filesystem::equivalent(a, b, ec) && !ec;
}

// Throws "tapegrad: <what>: <out_flag> '<out>' is <in_flag> '<in>' ..." when they are one file.
inline void refuse_same_file(const std::string& what, const std::string& in_flag, const std::string& in,
                             const std::string& out_flag, const std::string& out) {
    if (same_file(in, out))
        throw Error(fmt::format("tapegrad: {}: {} '{}' is the same file as {} '{}'; writing it would destroy "
                                "the input: choose another {}",
                                what, out_flag, out, in_flag, in, out_flag));
}

}  // namespace tg::train
