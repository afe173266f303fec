#include "models/safetensors.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace tg::models {
namespace {

using json = nlohmann::json;

[[noreturn]] void reject(const std::string& what, const std::string& why) {
    throw Error("tapegrad: safetensors: " + what + ": " + why);
}

using Entry = TensorEntry;

Entry parse_entry(const std::string& what, const std::string& name, const json& v, uint64_t data_size) {
    if (!v.is_object()) reject(what, "entry '" + name + "' is not an object");
    Entry e;
    e.name = name;
    if (!v.contains("dtype") || !v["dtype"].is_string())
        reject(what, "entry '" + name + "' has no dtype string");
    e.dtype = v["dtype"].get<std::string>();
    if (e.dtype != "F32" && e.dtype != "I64")
        reject(what,
               "entry '" + name + "' has unsupported dtype " + e.dtype + " (tapegrad reads F32 and I64)");
    if (!v.contains("shape") || !v["shape"].is_array())
        reject(what, "entry '" + name + "' has no shape array");
    uint64_t numel = 1;
    for (const json& d : v["shape"]) {
        if (!d.is_number_unsigned())
            reject(what, "entry '" + name + "' has a non-integer or negative dimension");
        uint64_t n = d.get<uint64_t>();
        if (n != 0 && numel > (uint64_t{1} << 40) / n)
            reject(what, "entry '" + name + "' has an absurdly large shape");
        numel *= n;
        e.shape.push_back(static_cast<int64_t>(n));
    }
    const json& off = v.contains("data_offsets") ? v["data_offsets"] : json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        reject(what, "entry '" + name + "' needs data_offsets [begin, end]");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size)
        reject(what, fmt::format("entry '{}' has data_offsets [{}, {}] outside the {} data bytes", name,
                                 e.begin, e.end, data_size));
    uint64_t want = numel * (e.dtype == "F32" ? 4 : 8);
    if (e.end - e.begin != want)
        reject(what, fmt::format("entry '{}' spans {} bytes but {} {} needs {}", name, e.end - e.begin,
                                 e.dtype, shape_str(e.shape), want));
    return e;
}

}  // namespace

std::map<std::string, Tensor> SafeTensors::f32_map() const { return {f32.begin(), f32.end()}; }

const Tensor& SafeTensors::get(const std::string& name) const {
    for (auto& [n, t] : f32)
        if (n == name) return t;
    throw Error("tapegrad: safetensors: no tensor named '" + name + "'");
}

SafeTensorsHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& what) {
    if (size < 8) reject(what, fmt::format("file is {} bytes, shorter than the 8-byte header length", size));
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
    if (n > size - 8)
        reject(what, fmt::format("header length {} runs past the end of the {}-byte file", n, size));
    json header;
    try {
        header = json::parse(data + 8, data + 8 + n);
    } catch (const json::exception& e) {
        reject(what, std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) reject(what, "header is not a JSON object");
    uint64_t data_size = size - 8 - n;
    SafeTensorsHeader h;
    h.data_start = 8 + n;
    for (auto& [name, v] : header.items()) {
        if (name == "__metadata__") {
            if (!v.is_object()) reject(what, "__metadata__ is not an object");
            for (auto& [k, s] : v.items()) {
                if (!s.is_string()) reject(what, "__metadata__ value of '" + k + "' is not a string");
                h.metadata[k] = s.get<std::string>();
            }
            continue;
        }
        h.entries.push_back(parse_entry(what, name, v, data_size));
    }
    std::sort(h.entries.begin(), h.entries.end(), [](auto& a, auto& b) { return a.begin < b.begin; });
    for (size_t i = 1; i < h.entries.size(); ++i)
        if (h.entries[i].begin < h.entries[i - 1].end)
            reject(what, "entries '" + h.entries[i - 1].name + "' and '" + h.entries[i].name + "' overlap");
    return h;
}

SafeTensors parse_safetensors(const uint8_t* data, size_t size, const std::string& what) {
    SafeTensorsHeader h = parse_safetensors_header(data, size, what);
    const uint8_t* base = data + h.data_start;
    SafeTensors st;
    st.metadata = std::move(h.metadata);
    for (const Entry& e : h.entries) {
        const uint8_t* p = base + e.begin;
        if (e.dtype == "F32") {
            Tensor t = Tensor::empty(e.shape);
            std::memcpy(t.data(), p, e.end - e.begin);  // little-endian host, as the format
            st.f32.emplace_back(e.name, t);
        } else {
            Ids ids{e.shape, std::vector<int64_t>((e.end - e.begin) / 8)};
            std::memcpy(ids.data.data(), p, e.end - e.begin);
            st.i64[e.name] = ids;
        }
    }
    return st;
}

MappedSafeTensors::MappedSafeTensors(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw Error("tapegrad: safetensors: cannot open '" + path + "': " + std::strerror(errno));
    struct stat sb {};
    if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ::close(fd);
        throw Error("tapegrad: safetensors: '" + path + "' is not a regular file");
    }
    size_ = static_cast<size_t>(sb.st_size);
    if (size_ > 0) {
        void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        int err = errno;
        ::close(fd);
        if (m == MAP_FAILED)
            throw Error("tapegrad: safetensors: cannot map '" + path + "': " + std::strerror(err));
        map_ = static_cast<const uint8_t*>(m);
    } else {
        ::close(fd);
    }
    try {
        header_ = parse_safetensors_header(map_, size_, path);
    } catch (...) {
        if (map_) ::munmap(const_cast<uint8_t*>(map_), size_);
        throw;
    }
    for (size_t i = 0; i < header_.entries.size(); ++i) index_[header_.entries[i].name] = i;
}

MappedSafeTensors::~MappedSafeTensors() {
    if (map_) ::munmap(const_cast<uint8_t*>(map_), size_);
}

const TensorEntry* MappedSafeTensors::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &header_.entries[it->second];
}

const float* MappedSafeTensors::f32(const TensorEntry& e, std::vector<float>& scratch) const {
    if (e.dtype != "F32")
        throw Error("tapegrad: safetensors: '" + path_ + "': tensor '" + e.name + "' is " + e.dtype +
                    ", expected F32");
    const uint8_t* p = map_ + header_.data_start + e.begin;
    if (reinterpret_cast<uintptr_t>(p) % alignof(float) == 0) return reinterpret_cast<const float*>(p);
    scratch.resize((e.end - e.begin) / 4);
    std::memcpy(scratch.data(), p, e.end - e.begin);
    return scratch.data();
}

SafeTensors read_safetensors(const std::string& path) {
    // A folder opens as an ifstream and fails on the first read with libstdc++'s
    // "basic_filebuf::underflow", which names neither the path nor the problem.
    if (std::filesystem::is_directory(path))
        reject(path, "is a folder; expected a .safetensors file (e.g. one written by tapegrad train --save)");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("tapegrad: safetensors: cannot open '" + path + "': " + std::strerror(errno));
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return parse_safetensors(bytes.data(), bytes.size(), path);
}

// Temporary files of earlier writes to the same target whose writer is gone
// (killed mid-save: ".NAME.tmp.PID" with no live PID) are removed; a live
// writer's file is left alone. Returns how many were removed.
int remove_stale_temporaries(const std::filesystem::path& dir, const std::string& prefix) {
    namespace fs = std::filesystem;
    std::error_code ec;
    int removed = 0;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string n = it->path().filename().string();
        if (n.size() <= prefix.size() || n.compare(0, prefix.size(), prefix) != 0) continue;
        std::string pid_str = n.substr(prefix.size());
        if (pid_str.find_first_not_of("0123456789") != std::string::npos || pid_str.size() > 9) continue;
        pid_t pid = static_cast<pid_t>(std::stol(pid_str));
        if (pid == ::getpid() || pid <= 0) continue;
        if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
        std::error_code rm;
        if (fs::remove(it->path(), rm)) ++removed;
    }
    return removed;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
    namespace fs = std::filesystem;
    fs::path target(path);
    fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    std::string name = ".";  // appended piecewise: GCC 12 warns (-Wrestrict) on "lit" + string at -O3
    name += target.filename().string();
    name += ".tmp.";
    remove_stale_temporaries(dir, name);
    name += std::to_string(::getpid());
    std::string tmp = (dir / name).string();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw Error("tapegrad: cannot write '" + tmp + "': " + std::strerror(errno));
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw Error("tapegrad: writing '" + tmp + "' failed: " + std::strerror(err));
        }
        done += static_cast<size_t>(w);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        ::unlink(tmp.c_str());
        throw Error("tapegrad: flushing '" + tmp + "' failed: " + std::strerror(errno));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw Error("tapegrad: renaming onto '" + path + "' failed: " + std::strerror(err));
    }
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata,
                       const std::map<std::string, Ids>& ids) {
    json header = json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t off = 0;
    for (auto& [name, t] : tensors) {
        uint64_t bytes = static_cast<uint64_t>(t.numel()) * 4;
        header[name] = {{"dtype", "F32"}, {"shape", t.shape()}, {"data_offsets", {off, off + bytes}}};
        off += bytes;
    }
    for (auto& [name, v] : ids) {
        uint64_t bytes = v.data.size() * 8;
        header[name] = {{"dtype", "I64"}, {"shape", v.shape}, {"data_offsets", {off, off + bytes}}};
        off += bytes;
    }
    std::string h = header.dump();
    while ((h.size() + 8) % 8 != 0) h.push_back(' ');  // pad so the data starts 8-byte aligned
    std::string out;
    out.reserve(8 + h.size() + off);
    uint64_t n = h.size();
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    out += h;
    for (auto& [name, t] : tensors) {
        std::vector<float> v = t.to_vector();
        out.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
    }
    for (auto& [name, v] : ids) out.append(reinterpret_cast<const char*>(v.data.data()), v.data.size() * 8);
    write_file_atomic(path, out);
}

}  // namespace tg::models
