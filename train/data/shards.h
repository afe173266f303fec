// Token shards in llm.c's format, so corpora prepared here and by llm.c's
// dev/data scripts are interchangeable:
//
//   header: 256 little-endian int32 (1024 bytes)
//     [0] magic 20240520   [1] version 1   [2] token count n   [3..255] zero
//   body:   n little-endian uint16 token ids (GPT-2's 50257 ids fit)
//
// A file is valid only if its size is exactly 1024 + 2n bytes. Anything else
// (wrong magic or version, a negative count, a truncated or overlong body) is
// refused with the file's name and the reason.
//
// MappedShard maps a file read-only and shared: its pages belong to the page
// cache (RssFile), not to the process's anonymous memory, and the kernel pages
// them in and out on demand, so a loader over many GB of shards keeps a flat
// RssAnon.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tg::train::shards {

inline constexpr int32_t kMagic = 20240520;
inline constexpr int32_t kVersion = 1;
inline constexpr int kHeaderInts = 256;
inline constexpr size_t kHeaderBytes = kHeaderInts * sizeof(int32_t);

// The bytes of a shard holding `tokens` (header + body).
std::string encode_shard(const std::vector<uint16_t>& tokens);
// Write a shard atomically (temporary file, fsync, rename).
void write_shard(const std::string& path, const std::vector<uint16_t>& tokens);
// Validate a header against the file size; returns the token count or throws
// "tapegrad: shard '<path>': <reason>".
int64_t check_header(const std::string& path, const void* header, size_t file_bytes);
// Read a whole shard into memory (tests and tools; training maps them).
std::vector<uint16_t> read_shard(const std::string& path);

// The shards of one split in `dir`: files named [<prefix>_]<split>[_NNNNNN].bin
// (tapegrad's train_000000.bin and llm.c's fineweb_train_000001.bin or
// tiny_shakespeare_val.bin), sorted by name.
std::vector<std::string> list_shards(const std::string& dir, const std::string& split);

class MappedShard {
public:
    explicit MappedShard(const std::string& path);  // maps and validates
    ~MappedShard();
    MappedShard(MappedShard&& o) noexcept;
    MappedShard(const MappedShard&) = delete;
    MappedShard& operator=(const MappedShard&) = delete;
    MappedShard& operator=(MappedShard&&) = delete;

    const uint16_t* tokens() const { return tokens_; }
    int64_t size() const { return size_; }
    const std::string& path() const { return path_; }
    // CRC-32 (zlib's) of the whole file, header included: manifest.json's "crc32".
    uint32_t file_crc32() const;

private:
    std::string path_;
    void* map_ = nullptr;
    size_t map_bytes_ = 0;
    const uint16_t* tokens_ = nullptr;
    int64_t size_ = 0;
};

}  // namespace tg::train::shards
