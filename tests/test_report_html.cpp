// report.html (train/report/report_html.h): the filled page embeds every run's data as
// JSON that survives any text (a sample with "</script>"), the template's
// markers are all filled, d3 is found by the documented search (TAPEGRAD_D3,
// then $XDG_DATA_DIRS) and refused when it is not usable, with the way to get it.
// The page in a real browser: tests/browser_report.py (ctest label `browser`).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <unistd.h>

#include "train/report/report_html.h"

namespace fs = std::filesystem;
using namespace tg;

namespace {

fs::path tmpdir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("tapegrad_html_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// A run folder as tapegrad writes it: 2 layers x 3 heads probed at steps 0 and 4.
void make_run(const fs::path& dir, bool merged) {
    fs::create_directories(dir);
    std::ofstream(dir / "metrics.csv")
        << "epoch,step,tokens_seen,batch_loss,lr,grad_norm,elapsed_s,train_loss,"
           "val_loss\n1,0,32,10.5,0.0004,2.0,0.1,9.75,9.9\n1,1,64,9.5,0.0004,"
           "2.0,0.2,,\n";
    std::ofstream d(dir / "dynamics.csv");
    d << "step,layer,head,g_norm,dm_cos,term_q_norm,term_s_norm,stable_rank,sv1,sv2\n";
    for (int step : {0, 4})
        for (int l = 0; l < 2; ++l)
            for (int h = 0; h < 3; ++h)
                d << step << "," << l << "," << h << ",0.125," << 0.5 + 0.01 * h << ","
                  << (merged ? "" : "0.25") << "," << (merged ? "0.25" : "") << ",3.5,1.5,0.75\n";
    nlohmann::json s = {{"config", {{"n_layers", 2}, {"n_heads", 3}, {"attention", merged ? "alt1" : "mha"}}},
                        {"lr", 0.0004},
                        {"book_lines", "Ep 1 (Step 000000): Train loss 9.750, Val loss 9.900\n"},
                        {"samples", {"Every effort moves you </script><!-- & \"quoted\""}}};
    std::ofstream(dir / "summary.json") << s.dump(2);
}

// The JSON between <script type="application/json" id="tg-data"> and its </script>.
nlohmann::json embedded_data(const std::string& page) {
    const std::string open = "<script type=\"application/json\" id=\"tg-data\">";
    size_t a = page.find(open);
    REQUIRE(a != std::string::npos);
    a += open.size();
    size_t b = page.find("</script>", a);
    REQUIRE(b != std::string::npos);
    std::string text = page.substr(a, b - a);
    CHECK(text.find('<') == std::string::npos);  // nothing in the data can close the element
    return nlohmann::json::parse(text);
}

// Sets (or, with nullopt, unsets) an environment variable for one scope.
struct EnvVar {
    std::string name;
    std::optional<std::string> old;
    EnvVar(std::string n, std::optional<std::string> v) : name(std::move(n)) {
        if (const char* o = std::getenv(name.c_str())) old = o;
        if (v)
            ::setenv(name.c_str(), v->c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
    ~EnvVar() {
        if (old)
            ::setenv(name.c_str(), old->c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
};

const std::string kFakeD3 = "/* a stand-in d3 */ var d3 = {version:\"3.5.17\"};";

}  // namespace

TEST_CASE("report.html: every run's CSVs and summary embedded, markers filled, text escaped",
          "[report][html]") {
    fs::path dir = tmpdir("render");
    make_run(dir / "mha", false);
    make_run(dir / "alt1", true);
    std::string page = train::render_report_html(
        "compare <x>", {{"mha", (dir / "mha").string()}, {"alt1", (dir / "alt1").string()}}, kFakeD3);
    for (const char* m : {"@TAPEGRAD_TITLE@", "@TAPEGRAD_D3@", "@TAPEGRAD_DATA@"})
        CHECK(page.find(m) == std::string::npos);
    CHECK(page.find("<title>compare &lt;x&gt;</title>") != std::string::npos);
    CHECK(page.find("<script>" + kFakeD3 + "</script>") != std::string::npos);  // inlined as is
    nlohmann::json data = embedded_data(page);
    REQUIRE(data["runs"].size() == 2);
    CHECK(data["title"] == "compare <x>");
    const nlohmann::json& mha = data["runs"][0];
    CHECK(mha["name"] == "mha");
    CHECK(mha["dynamics"]["rows"].size() == 2 * 2 * 3);  // steps x layers x heads
    CHECK(mha["dynamics"]["columns"][0] == "step");
    CHECK(mha["dynamics"]["rows"][6][0] == 4);  // whole numbers stay integers
    CHECK(mha["dynamics"]["rows"][6][0].is_number_integer());
    CHECK(mha["dynamics"]["rows"][0][6].is_null());                      // empty term_s_norm of mha
    CHECK(data["runs"][1]["dynamics"]["rows"][0][5].is_null());          // empty term_q_norm of alt1
    CHECK(mha["dynamics"]["rows"][1][4].get<double>() == Approx(0.51));  // dm_cos of head 1
    CHECK(mha["metrics"]["rows"][1][7].is_null());                       // no eval at step 1
    CHECK(mha["summary"]["samples"][0] == "Every effort moves you </script><!-- & \"quoted\"");
    CHECK(mha["summary"]["config"]["n_heads"] == 3);
    fs::remove_all(dir.parent_path());
}

TEST_CASE("report.html: a run without dynamics.csv is shown without heads, damaged files are refused",
          "[report][html]") {
    fs::path dir = tmpdir("damaged");
    make_run(dir / "mha", false);
    fs::remove(dir / "mha" / "dynamics.csv");
    nlohmann::json data =
        embedded_data(train::render_report_html("t", {{"mha", (dir / "mha").string()}}, kFakeD3));
    CHECK(data["runs"][0]["dynamics"].is_null());
    std::ofstream(dir / "mha" / "dynamics.csv") << "step,layer\n0,0\n";  // no head column
    CHECK_THROWS_WITH(train::render_report_html("t", {{"mha", (dir / "mha").string()}}, kFakeD3),
                      Catch::Contains("dynamics.csv") && Catch::Contains("no column 'head'"));
    std::ofstream(dir / "mha" / "dynamics.csv") << "step,layer,head\n0,0,x\n";
    CHECK_THROWS_WITH(train::render_report_html("t", {{"mha", (dir / "mha").string()}}, kFakeD3),
                      Catch::Contains("dynamics.csv") && Catch::Contains("expected a number"));
    std::ofstream(dir / "mha" / "summary.json") << "{\"config\": ";
    CHECK_THROWS_WITH(train::render_report_html("t", {{"mha", (dir / "mha").string()}}, kFakeD3),
                      Catch::Contains("summary.json") && Catch::Contains("not valid JSON"));
    fs::remove_all(dir.parent_path());
}

TEST_CASE("report.html: d3 from TAPEGRAD_D3, else $XDG_DATA_DIRS, and without it how to get it",
          "[report][html]") {
    fs::path dir = tmpdir("find");
    fs::path a = dir / "a", b = dir / "b";
    fs::create_directories(a);
    fs::create_directories(b / "javascript" / "d3");
    std::ofstream(b / "javascript" / "d3" / "d3.min.js") << kFakeD3;
    std::string why;
    {
        EnvVar env("TAPEGRAD_D3", std::nullopt), xdg("XDG_DATA_DIRS", a.string() + ":" + b.string());
        CHECK(train::find_d3(why) == (b / "javascript" / "d3" / "d3.min.js").string());
    }
    {
        EnvVar env("TAPEGRAD_D3", std::nullopt), xdg("XDG_DATA_DIRS", a.string());
        CHECK(train::find_d3(why).empty());
        CHECK_THAT(why, Catch::Contains((a / "javascript" / "d3" / "d3.min.js").string()));
    }
    {
        // TAPEGRAD_D3 wins, and a wrong one is said, not replaced by the search
        EnvVar env("TAPEGRAD_D3", (dir / "nope.js").string()), xdg("XDG_DATA_DIRS", b.string());
        CHECK(train::find_d3(why).empty());
        CHECK_THAT(why, Catch::Contains("TAPEGRAD_D3") && Catch::Contains("nope.js"));
    }
    make_run(dir / "run" / "mha", false);
    std::vector<train::HtmlRun> runs = {{"mha", (dir / "run" / "mha").string()}};
    fs::path page = dir / "run" / "report.html";
    {
        EnvVar env("TAPEGRAD_D3", std::nullopt), xdg("XDG_DATA_DIRS", a.string());
        std::string note = train::write_report_html((dir / "run").string(), "t", runs);
        CHECK_THAT(note, Catch::Contains("not written") && Catch::Contains("apt-get install libjs-d3") &&
                             Catch::Contains("TAPEGRAD_D3"));
        CHECK_FALSE(fs::exists(page));
    }
    {
        std::ofstream(dir / "d3v7.js") << "var d3 = {version:\"7.8.5\"};";
        EnvVar env("TAPEGRAD_D3", (dir / "d3v7.js").string());
        CHECK_THAT(train::write_report_html((dir / "run").string(), "t", runs),
                   Catch::Contains("d3v7.js") && Catch::Contains("not d3 version 3"));
        CHECK_FALSE(fs::exists(page));
    }
    {
        EnvVar env("TAPEGRAD_D3", std::nullopt), xdg("XDG_DATA_DIRS", b.string());
        std::string note = train::write_report_html((dir / "run").string(), "t", runs);
        CHECK_THAT(note, Catch::Contains("wrote " + page.string()));
        REQUIRE(fs::exists(page));
        std::string text = slurp(page);
        CHECK(text.find(kFakeD3) != std::string::npos);
        CHECK(embedded_data(text)["runs"][0]["name"] == "mha");
    }
    fs::remove_all(dir.parent_path());
}
