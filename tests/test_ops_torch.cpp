// Every op against PyTorch: tests/fixtures/ops.json is written by
// tools/make_op_fixtures.py (Debian python3-torch); the comparison and its
// tolerances are tests/fixture_check.h.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

#include "core/tapegrad.h"
#include "fixture_check.h"
#include "op_cases.h"
#include "test_util.h"

using namespace tg;
using json = nlohmann::json;

TEST_CASE("every op matches PyTorch forward and backward", "[ops][torch]") {
    std::ifstream f(test::source_path("tests/fixtures/ops.json"));
    REQUIRE(f.good());
    json fx = json::parse(f);
    // The table (tests/op_cases.h) and the fixture name the same cases.
    std::map<std::string, const test::OpCase*> rows;
    for (auto& c : test::op_cases()) rows[c.name] = &c;
    for (auto& [name, c] : rows) {
        INFO("op case '" << name
                         << "' has no PyTorch fixture: add it to tools/make_op_fixtures.py and rerun it");
        CHECK(fx["cases"].contains(name));
    }
    for (auto& [name, c] : fx["cases"].items()) {
        INFO("fixture case '" << name << "' has no row in tests/op_cases.h");
        CHECK(rows.count(name));
    }
    for (auto& [name, c] : fx["cases"].items()) {
        if (!rows.count(name)) continue;
        SECTION(name) {
            std::string diff = test::check_fixture_case(c, rows.at(name)->fn);
            INFO(name << ": " << diff);
            CHECK(diff.empty());
        }
    }
}
