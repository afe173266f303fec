// A small CSV reader for the files tapegrad writes (metrics.csv, dynamics.csv):
// a header row, comma-separated numbers, empty cells for "not recorded".
#pragma once

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg::train {

struct Csv {
    std::vector<std::string> columns;
    std::vector<std::vector<double>> rows;  // NaN for empty cells
    int col(const std::string& name) const {
        for (size_t i = 0; i < columns.size(); ++i)
            if (columns[i] == name) return static_cast<int>(i);
        throw Error("tapegrad: csv: no column '" + name + "'");
    }
    double at(size_t row, const std::string& name) const { return rows[row][static_cast<size_t>(col(name))]; }
};

inline Csv read_csv(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw Error("tapegrad: cannot read '" + path + "'");
    Csv c;
    std::string line;
    auto split = [](const std::string& s) {
        std::vector<std::string> out;
        std::string cell;
        std::istringstream is(s);
        while (std::getline(is, cell, ',')) out.push_back(cell);
        if (!s.empty() && s.back() == ',') out.emplace_back();
        return out;
    };
    if (!std::getline(f, line)) throw Error("tapegrad: '" + path + "' is empty");
    c.columns = split(line);
    // A damaged file (a cut-off row, NUL bytes of a torn write) is refused naming
    // the file, line and column, never with the bare "stod" of std::stod.
    auto number = [&](const std::string& cell, size_t line_no, size_t col) {
        if (cell.empty()) return std::nan("");
        const char* b = cell.c_str();
        char* end = nullptr;
        double v = std::strtod(b, &end);
        if (end == b || static_cast<size_t>(end - b) != cell.size())
            throw Error("tapegrad: '" + path + "' line " + std::to_string(line_no) + ", column '" +
                        (col < c.columns.size() ? c.columns[col] : std::to_string(col + 1)) +
                        "': expected a number, found '" + cell.substr(0, 32) + "' (a damaged run file)");
        return v;
    };
    for (size_t line_no = 2; std::getline(f, line); ++line_no) {
        if (line.empty()) continue;
        std::vector<double> row;
        std::vector<std::string> cells = split(line);
        for (size_t k = 0; k < cells.size(); ++k) row.push_back(number(cells[k], line_no, k));
        row.resize(c.columns.size(), std::nan(""));
        c.rows.push_back(row);
    }
    return c;
}

}  // namespace tg::train
