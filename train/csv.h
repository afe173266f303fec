// A small CSV reader for the files tapegrad writes (metrics.csv, dynamics.csv):
// a header row, comma-separated numbers, empty cells for "not recorded".
#pragma once

#include <cmath>
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
    while (std::getline(f, line)) {
        if (line.empty()) continue;
        std::vector<double> row;
        for (auto& cell : split(line)) row.push_back(cell.empty() ? std::nan("") : std::stod(cell));
        row.resize(c.columns.size(), std::nan(""));
        c.rows.push_back(row);
    }
    return c;
}

}  // namespace tg::train
