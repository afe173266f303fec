#include "train/data/shards.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include "core/tensor.h"
#include "models/safetensors.h"

namespace tg::train::shards {
namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little, "shards are little-endian; so is this reader");

namespace {

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
    throw Error(fmt::format("tapegrad: shard '{}': {}", path, why));
}

}  // namespace

std::string encode_shard(const std::vector<uint16_t>& tokens) {
    if (tokens.size() > static_cast<size_t>(INT32_MAX))
        throw Error(fmt::format("tapegrad: shard: {} tokens do not fit the int32 count", tokens.size()));
    int32_t header[kHeaderInts] = {};
    header[0] = kMagic;
    header[1] = kVersion;
    header[2] = static_cast<int32_t>(tokens.size());
    std::string bytes(kHeaderBytes + 2 * tokens.size(), '\0');
    std::memcpy(bytes.data(), header, kHeaderBytes);
    if (!tokens.empty()) std::memcpy(bytes.data() + kHeaderBytes, tokens.data(), 2 * tokens.size());
    return bytes;
}

void write_shard(const std::string& path, const std::vector<uint16_t>& tokens) {
    models::write_file_atomic(path, encode_shard(tokens));
}

int64_t check_header(const std::string& path, const void* header_bytes, size_t file_bytes) {
    if (file_bytes < kHeaderBytes)
        refuse(path, fmt::format("{} bytes is shorter than the 1024-byte header", file_bytes));
    int32_t h[kHeaderInts];
    std::memcpy(h, header_bytes, kHeaderBytes);
    if (h[0] != kMagic)
        refuse(path, fmt::format("magic number {} is not llm.c's {} (not a token shard)", h[0], kMagic));
    if (h[1] != kVersion)
        refuse(path,
               fmt::format("version {} is not supported (expected {}: uint16 GPT-2 tokens)", h[1], kVersion));
    if (h[2] < 0) refuse(path, fmt::format("token count {} is negative", h[2]));
    size_t want = kHeaderBytes + 2 * static_cast<size_t>(h[2]);
    if (file_bytes < want)
        refuse(path,
               fmt::format("truncated: the header promises {} tokens ({} bytes) but the file has {} bytes",
                           h[2], want, file_bytes));
    if (file_bytes > want)
        refuse(path, fmt::format("{} bytes but the header's {} tokens make {}: the token count is wrong",
                                 file_bytes, h[2], want));
    return h[2];
}

std::vector<uint16_t> read_shard(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) refuse(path, std::string("cannot open: ") + std::strerror(errno));
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    int64_t n = check_header(path, bytes.data(), bytes.size());
    std::vector<uint16_t> tokens(static_cast<size_t>(n));
    if (n > 0) std::memcpy(tokens.data(), bytes.data() + kHeaderBytes, 2 * static_cast<size_t>(n));
    return tokens;
}

std::vector<std::string> list_shards(const std::string& dir, const std::string& split) {
    const std::regex name("(.*_)?" + split + "(_[0-9]+)?\\.bin");
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && std::regex_match(e.path().filename().string(), name))
            out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

MappedShard::MappedShard(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) refuse(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        refuse(path, std::string("cannot stat: ") + std::strerror(err));
    }
    map_bytes_ = static_cast<size_t>(st.st_size);
    if (map_bytes_ < kHeaderBytes) {
        ::close(fd);
        check_header(path, nullptr, map_bytes_);  // throws: too short
    }
    map_ = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_SHARED, fd, 0);
    int err = errno;
    ::close(fd);  // the mapping keeps the file
    if (map_ == MAP_FAILED) {
        map_ = nullptr;
        refuse(path, std::string("cannot map: ") + std::strerror(err));
    }
    try {
        size_ = check_header(path, map_, map_bytes_);
    } catch (...) {
        ::munmap(map_, map_bytes_);
        map_ = nullptr;
        throw;
    }
    tokens_ = reinterpret_cast<const uint16_t*>(static_cast<const char*>(map_) + kHeaderBytes);
}

MappedShard::MappedShard(MappedShard&& o) noexcept
    : path_(std::move(o.path_)), map_(o.map_), map_bytes_(o.map_bytes_), tokens_(o.tokens_), size_(o.size_) {
    o.map_ = nullptr;
}

uint32_t MappedShard::file_crc32() const {
    uLong crc = ::crc32(0L, Z_NULL, 0);
    const auto* p = static_cast<const Bytef*>(map_);
    for (size_t done = 0; done < map_bytes_;) {  // zlib takes 32-bit lengths
        size_t n = std::min<size_t>(map_bytes_ - done, size_t{1} << 30);
        crc = ::crc32(crc, p + done, static_cast<uInt>(n));
        done += n;
    }
    return static_cast<uint32_t>(crc);
}

MappedShard::~MappedShard() {
    if (map_) ::munmap(map_, map_bytes_);
}

}  // namespace tg::train::shards
