// Aimed breaks in backward (core/break_on.h): glob labels, the step filter, the
// warning with the closest labels, and the dump's input annotations. The gdb side
// (a real stop in tapegrad train) is tests/gdb_train.sh.
#include <catch2/catch.hpp>

#include <iostream>
#include <sstream>

#include "core/break_on.h"
#include "core/tapegrad.h"
#include "test_util.h"

using namespace tg;

namespace {

// stderr of `fn`, captured through std::cerr's buffer.
template <class F>
std::string capture_cerr(F&& fn) {
    std::ostringstream os;
    auto* old = std::cerr.rdbuf(os.rdbuf());
    try {
        fn();
    } catch (...) {
        std::cerr.rdbuf(old);
        throw;
    }
    std::cerr.rdbuf(old);
    return os.str();
}

// A small graph whose entries carry attention-like labels:
// trf_blocks.1.att.{W_query.linear-like mul, scores, softmax}, then a sum.
Tensor labelled_loss(const Tensor& x) {
    LabelScope blk("trf_blocks.1");
    LabelScope att("att");
    Tensor q;
    {
        LabelScope wq("W_query");
        q = mul(x, 0.5f).named("linear");
    }
    Tensor s = mul(q, x).named("scores");
    return sum(softmax(s));
}

}  // namespace

TEST_CASE("break labels match exactly or as a glob whose * crosses dots", "[break]") {
    using detail::label_matches;
    CHECK(label_matches("trf_blocks.1.att.scores", "trf_blocks.1.att.scores"));
    CHECK_FALSE(label_matches("trf_blocks.1.att.scores", "trf_blocks.1.att.scores2"));
    CHECK(label_matches("trf_blocks.3.att.heads.5.*", "trf_blocks.3.att.heads.5.scores"));
    CHECK(label_matches("trf_blocks.3.att.heads.5.*", "trf_blocks.3.att.heads.5.S.linear"));
    CHECK_FALSE(label_matches("trf_blocks.3.att.heads.5.*", "trf_blocks.3.att.heads.50.scores"));
    CHECK(label_matches("trf_blocks.*.att.heads.?.scores", "trf_blocks.11.att.heads.7.scores"));
    CHECK_FALSE(label_matches("trf_blocks.*.att.heads.?.scores", "trf_blocks.11.att.heads.10.scores"));
    CHECK(label_matches("trf_blocks.[02].att.scores", "trf_blocks.2.att.scores"));
    CHECK_FALSE(label_matches("trf_blocks.[02].att.scores", "trf_blocks.1.att.scores"));
}

TEST_CASE("the step filter breaks only in the backward of that step", "[break]") {
    tape().clear();
    Tensor x = test::leaf({2, 3}, 3);
    Tensor loss = labelled_loss(x);
    const auto& entries = tape().entries();
    const TapeEntry* scores = nullptr;
    for (const auto& e : entries)
        if (e.output.label() == "trf_blocks.1.att.scores") scores = &e;
    REQUIRE(scores != nullptr);
    const TapeEntry& other = entries.front();

    set_break_on("trf_blocks.1.att.sc*", 4);
    for (int64_t step : {-1, 0, 3, 5}) {
        set_backward_step(step);
        detail::BreakWatch w;
        CHECK_FALSE(w.hit(*scores));
    }
    set_backward_step(4);
    detail::BreakWatch w;
    CHECK(w.hit(*scores));
    CHECK_FALSE(w.hit(other));

    set_break_on("trf_blocks.1.att.scores");  // no step: every backward
    set_backward_step(7);
    detail::BreakWatch any;
    CHECK(any.hit(*scores));
    set_break_on("");
    detail::BreakWatch off;
    CHECK_FALSE(off.hit(*scores));
    set_backward_step(-1);
    tape().clear();
}

TEST_CASE("closest labels: a missing suffix first, then typos, then by name", "[break]") {
    std::vector<std::string> labels = {"trf_blocks.1.att.W_query.linear", "trf_blocks.1.att.scores",
                                       "trf_blocks.1.att.softmax",        "trf_blocks.1.att.weights",
                                       "trf_blocks.10.att.scores",        "trf_blocks.1.norm1"};
    auto near = detail::closest_labels("trf_blocks.1.att.W_query", labels, 3);
    REQUIRE(near.size() == 3);
    CHECK(near[0] == "trf_blocks.1.att.W_query.linear");
    auto typo = detail::closest_labels("trf_blocks.1.att.scroes", labels, 2);
    CHECK(typo == std::vector<std::string>{"trf_blocks.1.att.scores", "trf_blocks.10.att.scores"});
    CHECK(detail::closest_labels("x", {}, 5).empty());
}

TEST_CASE("a break label that matches nothing warns once, naming the closest labels", "[break]") {
    Tensor x = test::leaf({2, 3}, 4);
    set_break_on("trf_blocks.1.att.W_query");
    std::string first = capture_cerr([&] { labelled_loss(x).backward(); });
    CHECK_THAT(first, Catch::Contains("warning") && Catch::Contains("'trf_blocks.1.att.W_query'") &&
                          Catch::Contains("trf_blocks.1.att.W_query.linear") &&
                          Catch::Contains("trf_blocks.1.att.scores"));
    // The suggestion comes first.
    CHECK(first.find("W_query.linear") < first.find("att.scores"));
    std::string second = capture_cerr([&] { labelled_loss(x).backward(); });
    CHECK(second.empty());

    set_break_on("trf_blocks.1.*.scores");  // a glob that matches: silent
    std::string glob = capture_cerr([&] { labelled_loss(x).backward(); });
    CHECK(glob.empty());

    set_break_on("trf_blocks.1.att.scores", 2);  // a step filter, but nothing numbers steps
    std::string unnumbered = capture_cerr([&] { labelled_loss(x).backward(); });
    CHECK_THAT(unnumbered, Catch::Contains("set_backward_step"));
    set_break_on("");
}

TEST_CASE("the dump says which entry made each input and which inputs need grad", "[break][tape]") {
    tape().clear();
    Tensor x = test::leaf({2, 3}, 5);
    x.set_label("x");
    Tensor c = Tensor::full({2, 3}, 2.0f);
    c.set_label("c");
    Tensor y = mul(x, c).named("y");
    Tensor z = add(y, x).named("z");
    std::ostringstream os;
    tape().dump(os);
    std::string d = os.str();
    CHECK_THAT(d, Catch::Contains("x[2, 3] leaf, needs grad") && Catch::Contains("c[2, 3] leaf, no grad") &&
                      Catch::Contains("y[2, 3] <- #0, needs grad"));
    tape().clear();
}
