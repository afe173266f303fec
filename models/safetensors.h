// safetensors read and write: an 8-byte little-endian header length N, N bytes of
// JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
// {str: str}}, then the data (offsets relative to its start).
// Reading validates everything before touching data: a truncated file, a header
// length past the end, bad JSON, offsets out of range or overlapping, a size that
// does not match dtype x shape, or an unsupported dtype is rejected with the
// reason. F32 tensors load as Tensors; I64 as Ids (token ids in fixtures).
// Writing is atomic: a temporary file beside the target, fsync, rename.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg::models {

struct SafeTensors {
    std::vector<std::pair<std::string, Tensor>> f32;  // file order
    std::map<std::string, Ids> i64;
    std::map<std::string, std::string> metadata;
    std::map<std::string, Tensor> f32_map() const;
    const Tensor& get(const std::string& name) const;  // throws naming the tensor if absent
};

SafeTensors read_safetensors(const std::string& path);
// `what` names the source in error messages (a path, or "fuzz input").
SafeTensors parse_safetensors(const uint8_t* data, size_t size, const std::string& what);

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {},
                       const std::map<std::string, Ids>& ids = {});

// Write `bytes` to `path` atomically (temporary file ".NAME.tmp.PID" beside it,
// fsync, rename, fsync dir). Temporaries of the same target left by a dead
// writer (a SIGKILL mid-save) are removed first.
void write_file_atomic(const std::string& path, const std::string& bytes);
int remove_stale_temporaries(const std::filesystem::path& dir, const std::string& prefix);

}  // namespace tg::models
