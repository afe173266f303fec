// A file written line by line (metrics.csv, dynamics.csv) whose every write is
// checked: fwrite, fflush and fclose. A full disk (ENOSPC), a file size limit
// (EFBIG under RLIMIT_FSIZE) or an I/O error throws
//   "tapegrad: writing '<path>': <the OS's reason>"
// at the write that failed, so a run stops instead of training on with its log
// silently empty.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace tg::train {

class CheckedFile {
public:
    // mode as fopen's ("w", "a"); throws naming the path when it cannot be opened.
    CheckedFile(const std::string& path, const char* mode);
    ~CheckedFile();  // closes without checking (a throw here would end the process)
    CheckedFile(const CheckedFile&) = delete;
    CheckedFile& operator=(const CheckedFile&) = delete;
    // Writes and flushes `text`: on disk (in the kernel's cache) when it returns.
    void write(const std::string& text);
    void close();  // checked; the destructor then does nothing
    const std::string& path() const { return path_; }

private:
    [[noreturn]] void fail(int err);
    std::string path_;
    std::FILE* f_ = nullptr;
};

// A resumed run's CSV cut back to its checkpoint: keeps the header and the
// leading rows whose column `col` is an integer <= last, and drops the rest
// (the steps after the checkpoint, and a torn last line of a killed writer).
// Rewritten atomically; a missing file is left missing. Returns the rows kept.
int64_t cut_csv_rows(const std::string& path, size_t col, int64_t last);

}  // namespace tg::train
