// safetensors read and write: an 8-byte little-endian header length N, N bytes of
// JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
// {str: str}}, then the data (offsets relative to its start).
// Reading validates everything before touching data: a truncated file, a header
// length past the end, bad JSON, offsets out of range or overlapping, a size that
// does not match dtype x shape, or an unsupported dtype is rejected with the
// reason. F32 tensors load as Tensors; I64 as Ids (token ids in fixtures).
// Writing is atomic: a temporary file beside the target, fsync, rename.
// MappedSafeTensors memory-maps a file and validates the same header without
// copying any data: large pretrained files (models/gpt2_hf.h) are read in place.
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

// One tensor of a validated header: offsets relative to the data section.
struct TensorEntry {
    std::string name, dtype;
    Shape shape;
    uint64_t begin = 0, end = 0;
};

// The validated header: entries in file order of their data, metadata, and where
// the data section starts (8 + header length).
struct SafeTensorsHeader {
    std::vector<TensorEntry> entries;
    std::map<std::string, std::string> metadata;
    uint64_t data_start = 0;
};
SafeTensorsHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& what);

// A read-only mmap of a safetensors file; the header is validated on open.
class MappedSafeTensors {
public:
    explicit MappedSafeTensors(const std::string& path);
    ~MappedSafeTensors();
    MappedSafeTensors(const MappedSafeTensors&) = delete;
    MappedSafeTensors& operator=(const MappedSafeTensors&) = delete;

    const std::string& path() const { return path_; }
    const SafeTensorsHeader& header() const { return header_; }
    const TensorEntry* find(const std::string& name) const;  // null if absent
    // An F32 entry's values, in place when 4-byte aligned, else copied to scratch.
    const float* f32(const TensorEntry& e, std::vector<float>& scratch) const;
    size_t file_size() const { return size_; }

private:
    std::string path_;
    const uint8_t* map_ = nullptr;
    size_t size_ = 0;
    SafeTensorsHeader header_;
    std::map<std::string, size_t> index_;
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
