#include "train/report/report_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/safetensors.h"
#include "train/io/csv.h"
#include "train/io/json_text.h"
#include "train/io/read_file.h"
#include "train/report_html_template.h"  // generated: kReportHtmlTemplate

namespace tg::train {
namespace fs = std::filesystem;
namespace {

std::string slurp(const std::string& path) { return read_file(path, "report.html: cannot read"); }

// A CSV as {columns, rows}: whole numbers as integers (step, layer, head: "3",
// not "3.0"), empty cells as null (nlohmann writes NaN as null).
nlohmann::json csv_json(const std::string& path, const std::vector<std::string>& required) {
    Csv c = read_csv(path);  // refuses a damaged file naming line and column
    for (auto& name : required)
        if (std::find(c.columns.begin(), c.columns.end(), name) == c.columns.end())
            throw Error("tapegrad: report.html: '" + path + "' has no column '" + name +
                        "' (not a file tapegrad wrote, or damaged)");
    nlohmann::json rows = nlohmann::json::array();
    for (auto& r : c.rows) {
        nlohmann::json row = nlohmann::json::array();
        for (double v : r) {
            if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15)
                row.push_back(static_cast<int64_t>(v));
            else
                row.push_back(v);
        }
        rows.push_back(std::move(row));
    }
    return {{"columns", c.columns}, {"rows", std::move(rows)}};
}

nlohmann::json run_json(const HtmlRun& run) {
    nlohmann::json j;
    j["name"] = run.name;
    std::string sp = run.dir + "/summary.json";
    try {
        j["summary"] = nlohmann::json::parse(slurp(sp));
    } catch (const nlohmann::json::exception& e) {
        throw Error("tapegrad: report.html: '" + sp +
                    "' is not valid JSON (a damaged run file): " + e.what());
    }
    j["metrics"] = csv_json(run.dir + "/metrics.csv", {"step"});
    std::string dp = run.dir + "/dynamics.csv";
    j["dynamics"] = fs::exists(dp) ? csv_json(dp, {"step", "layer", "head"}) : nlohmann::json(nullptr);
    return j;
}

// JSON inside <script type="application/json">: '<' can only occur inside JSON
// strings, where \u003c is the same character, so no "</script>" or "<!--" in a
// sample text can end the element early.
std::string script_safe_json(const nlohmann::json& j) {
    std::string s = json_text(j, "report.html");
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == '<')
            out += "\\u003c";
        else
            out += c;
    }
    return out;
}

std::string html_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '&':
            out += "&amp;";
            break;
        case '"':
            out += "&quot;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

// The template with each marker replaced by its text. Markers are looked up in
// the template only, so text inside d3 or the data is never taken for one; each
// must occur exactly once (otherwise the embedded template is broken: said so).
std::string fill(const std::string& page, std::vector<std::pair<std::string, std::string>> parts) {
    std::vector<std::pair<size_t, size_t>> at;  // (position in page, index in parts)
    for (size_t i = 0; i < parts.size(); ++i) {
        size_t p = page.find(parts[i].first);
        if (p == std::string::npos || page.find(parts[i].first, p + 1) != std::string::npos)
            throw Error("tapegrad: report.html: the embedded template must hold " + parts[i].first +
                        " exactly once (a broken build)");
        at.emplace_back(p, i);
    }
    std::sort(at.begin(), at.end());
    std::string out;
    size_t from = 0;
    for (auto [p, i] : at) {
        out.append(page, from, p - from);
        out += parts[i].second;
        from = p + parts[i].first.size();
    }
    out.append(page, from, std::string::npos);
    return out;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

const char* kHowTo = "install Debian's libjs-d3 (apt-get install libjs-d3) or set TAPEGRAD_D3 to a d3 "
                     "version 3 d3.min.js, then run `tapegrad report DIR` again";

}  // namespace

std::string find_d3(std::string& why) {
    if (const char* env = std::getenv("TAPEGRAD_D3"); env && *env) {
        if (fs::is_regular_file(env)) return env;
        why = fmt::format("TAPEGRAD_D3 is '{}', which is not a file", env);
        return "";
    }
    const char* xdg = std::getenv("XDG_DATA_DIRS");
    std::string dirs = xdg && *xdg ? xdg : "/usr/local/share:/usr/share";
    std::string looked;
    std::istringstream is(dirs);
    for (std::string d; std::getline(is, d, ':');) {
        if (d.empty()) continue;
        fs::path p = fs::path(d) / "javascript" / "d3" / "d3.min.js";
        if (fs::is_regular_file(p)) return p.string();
        looked += (looked.empty() ? "" : ", ") + p.string();
    }
    why = "no d3.min.js found (looked in " + looked + "; TAPEGRAD_D3 is not set)";
    return "";
}

std::string render_report_html(const std::string& title, const std::vector<HtmlRun>& runs,
                               const std::string& d3_source) {
    nlohmann::json data;
    data["title"] = title;
    data["runs"] = nlohmann::json::array();
    for (auto& r : runs) data["runs"].push_back(run_json(r));
    return fill(std::string(kReportHtmlTemplate), {{"@TAPEGRAD_TITLE@", html_escape(title)},
                                                   {"@TAPEGRAD_D3@", d3_source},
                                                   {"@TAPEGRAD_DATA@", script_safe_json(data)}});
}

std::string write_report_html(const std::string& out_dir, const std::string& title,
                              const std::vector<HtmlRun>& runs) {
    std::string why, d3_path = find_d3(why);
    if (d3_path.empty()) return "report.html not written: " + why + "; " + kHowTo;
    std::string d3 = slurp(d3_path);
    std::string low = lower(d3);
    if (low.find("</script") != std::string::npos || low.find("<!--") != std::string::npos)
        return "report.html not written: '" + d3_path +
               "' contains </script or <!-- and cannot be inlined into a page; " + kHowTo;
    if (d3.find("version:\"3.") == std::string::npos && d3.find("version: \"3.") == std::string::npos)
        return "report.html not written: '" + d3_path +
               "' is not d3 version 3 (the page uses d3 v3's API, Debian's libjs-d3); " + kHowTo;
    std::string page = render_report_html(title, runs, d3);
    std::string path = out_dir + "/report.html";
    models::write_file_atomic(path, page);
    return fmt::format("wrote {} ({:.2f} MB, d3 from {})", path, static_cast<double>(page.size()) / 1e6,
                       d3_path);
}

}  // namespace tg::train
