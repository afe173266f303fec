#include "train/io/checked_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/tensor.h"
#include "models/safetensors.h"
#include "train/io/read_file.h"

namespace tg::train {

CheckedFile::CheckedFile(const std::string& path, const char* mode) : path_(path) {
    f_ = std::fopen(path.c_str(), mode);
    if (!f_) throw Error("tapegrad: cannot write '" + path + "': " + std::strerror(errno));
}

CheckedFile::~CheckedFile() {
    if (f_) std::fclose(f_);
}

void CheckedFile::fail(int err) {
    std::fclose(f_);
    f_ = nullptr;
    throw Error("tapegrad: writing '" + path_ + "': " + std::strerror(err ? err : EIO));
}

void CheckedFile::write(const std::string& text) {
    if (!f_) throw Error("tapegrad: writing '" + path_ + "': the file is closed");
    errno = 0;
    if (std::fwrite(text.data(), 1, text.size(), f_) != text.size()) fail(errno);
    if (std::fflush(f_) != 0 || std::ferror(f_)) fail(errno);
}

void CheckedFile::close() {
    if (!f_) return;
    std::FILE* f = f_;
    f_ = nullptr;
    errno = 0;
    if (std::fclose(f) != 0)
        throw Error("tapegrad: writing '" + path_ + "': " + std::strerror(errno ? errno : EIO));
}

namespace {

// Field `col` of a CSV line as an integer, or false when it is not one.
bool field_int(const std::string& line, size_t col, int64_t& v) {
    size_t begin = 0;
    for (size_t i = 0; i < col; ++i) {
        begin = line.find(',', begin);
        if (begin == std::string::npos) return false;
        ++begin;
    }
    size_t end = line.find(',', begin);
    std::string f = line.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if (f.empty() || f.find_first_not_of("0123456789") != std::string::npos || f.size() > 18) return false;
    v = std::stoll(f);
    return true;
}

}  // namespace

int64_t cut_csv_rows(const std::string& path, size_t col, int64_t last) {
    if (!std::filesystem::exists(path)) return 0;
    std::istringstream in(read_file(path, "--resume: the run's"));
    std::string line, kept;
    const size_t header_fields = [&] {
        std::getline(in, line);
        kept = line + "\n";
        return static_cast<size_t>(std::count(line.begin(), line.end(), ','));
    }();
    int64_t rows = 0, step = 0;
    // A torn line has no newline at its end, or fewer fields: in.eof() or the count tells.
    while (std::getline(in, line) && !in.eof()) {
        if (static_cast<size_t>(std::count(line.begin(), line.end(), ',')) != header_fields) break;
        if (!field_int(line, col, step) || step > last) break;
        kept += line + "\n";
        ++rows;
    }
    models::write_file_atomic(path, kept);
    return rows;
}

}  // namespace tg::train
