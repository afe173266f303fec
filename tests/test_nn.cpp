// The layer author's API: calling a module opens its label scope whatever its
// forward takes; attention variants expose their heads' bilinear factors to the
// probe through a virtual, and a variant without them is refused by name.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "examples/lowrank_attention.h"
#include "models/gpt.h"
#include "test_util.h"
#include "train/study/probe.h"

using namespace tg;

namespace {

// A layer whose forward takes three arguments of different kinds.
class Scale3 : public nn::Layer<Scale3> {
public:
    Tensor forward(const Tensor& x, float s, const std::string& name) const { return mul(x, s).named(name); }
};

class Outer : public nn::Layer<Outer> {
public:
    Outer() { inner = register_module("inner", std::make_shared<Scale3>()); }
    Tensor forward(const Tensor& x) { return (*inner)(x, 2.0f, "scaled"); }
    std::shared_ptr<Scale3> inner;
};

class Root : public nn::Layer<Root> {
public:
    Root() { outer = register_module("outer", std::make_shared<Outer>()); }
    Tensor forward(const Tensor& x) { return exp((*outer)(x)); }
    std::shared_ptr<Outer> outer;
};

models::GPTConfig tiny(const std::string& attention) {
    models::GPTConfig c;
    c.vocab_size = 20;
    c.context_length = 6;
    c.emb_dim = 8;
    c.n_heads = 2;
    c.n_layers = 2;
    c.drop_rate = 0;
    c.attention = attention;
    return c;
}

int64_t count_label(const std::string& label) {
    auto& e = tape().entries();
    return std::count_if(e.begin(), e.end(), [&](const TapeEntry& t) { return t.output.label() == label; });
}

}  // namespace

TEST_CASE("calling a module opens its label scope, whatever its forward takes", "[nn]") {
    tape().clear();
    Root root;
    Tensor y = root(test::leaf({2, 3}, 1));
    REQUIRE(tape().size() == 2);
    CHECK(tape().entries()[0].output.label() == "outer.inner.scaled");  // nested scopes, 3-argument forward
    CHECK(tape().entries()[1].output.label() == "exp");                 // the root has no name
    CHECK(current_scope().empty());                                     // every scope closed again
    tape().clear();
}

TEST_CASE("a GPT's tape entries carry the module path of the layer that made them", "[nn]") {
    for (std::string att : {"mha", "alt1"}) {
        INFO(att);
        manual_seed(3);
        models::GPTModel m(tiny(att));
        tape().clear();
        Tensor logits = m(Ids{{1, 4}, {1, 2, 3, 4}});
        CHECK(count_label("trf_blocks.0.ff.layers.2.linear") == 1);
        CHECK(count_label("trf_blocks.1.norm2.layer_norm") == 1);
        CHECK(count_label("final_norm.layer_norm") == 1);
        if (att == "mha") {
            CHECK(count_label("trf_blocks.1.att.W_key.linear") == 1);
            CHECK(count_label("trf_blocks.1.att.scores") == 1);
        } else {
            CHECK(count_label("trf_blocks.1.att.heads.1.S.linear") == 1);
            CHECK(count_label("trf_blocks.1.att.heads.1.scores") == 1);
        }
        tape().clear();
    }
}

TEST_CASE("attention variants expose each head's bilinear factors", "[nn][probe]") {
    manual_seed(4);
    models::GPTModel mha(tiny("mha"));
    auto* a = dynamic_cast<nn::MultiHeadAttention*>(mha.trf_blocks[1]->att.get());
    REQUIRE(a);
    auto heads = mha.trf_blocks[1]->att->bilinear_heads();  // through the base class
    REQUIRE(heads.size() == 2);
    CHECK(heads[1].a.weight.impl() == a->W_query->weight.impl());
    CHECK(heads[1].a.row0 == 4);
    CHECK(heads[1].a.rows == 4);
    REQUIRE(heads[1].b);
    CHECK(heads[1].b->weight.impl() == a->W_key->weight.impl());

    models::GPTModel alt1(tiny("alt1"));
    auto* s = dynamic_cast<nn::MHA_alt1*>(alt1.trf_blocks[0]->att.get());
    REQUIRE(s);
    auto merged = alt1.trf_blocks[0]->att->bilinear_heads();
    REQUIRE(merged.size() == 2);
    CHECK(merged[1].a.weight.impl() == s->heads[1]->S->weight.impl());
    CHECK(merged[1].a.rows == 8);
    CHECK(!merged[1].b);  // M = S^T
}

TEST_CASE("the probe refuses a variant without bilinear factors, by name", "[nn][probe]") {
    examples::register_lowrank_attention();
    manual_seed(5);
    models::GPTModel m(tiny("lowrank"));
    REQUIRE_THROWS_WITH(train::DynamicsProbe(m, "", 1),
                        Catch::Contains("attention 'lowrank'") && Catch::Contains("bilinear_heads"));
}

// nn::Dropout's input is an activation, batch-first: under a data-parallel row
// split it states DropoutSplit::rows (core/ops.h), so a GPT forward on a rank's
// rows draws the global masks for them, and a layer fed a tensor whose dim 0 is
// not the rank's rows is refused instead of silently drawing another mask.
TEST_CASE("nn::Dropout declares its input row-split under data parallelism", "[nn]") {
    nn::Dropout layer(0.5f);
    set_dropout_rows({2, 2, 4});
    manual_seed(7);
    Tensor via_layer = layer(Tensor::ones({2, 5}));
    manual_seed(7);
    Tensor direct = dropout(Tensor::ones({2, 5}), 0.5f, true, DropoutSplit::rows);
    CHECK(via_layer.to_vector() == direct.to_vector());
    CHECK_THROWS_WITH(layer(Tensor::ones({4, 5})), Catch::Contains("dropout") && Catch::Contains("[4, 5]"));
    // The tiny GPT on this rank's 2 rows: every dropout of the model takes the path.
    models::GPTConfig cfg = models::preset("tiny");
    cfg.drop_rate = 0.1f;
    models::GPTModel m(cfg);
    CHECK(m(Ids{{2, 4}, std::vector<int64_t>(8, 1)}).shape() == Shape{2, 4, cfg.vocab_size});
    set_dropout_rows({});
    tape().clear();
}

namespace {
// Holds the first handle across many registrations (the list grows and moves).
struct ManyParams : nn::Module {
    ManyParams() {
        auto&& first = register_parameter("p0", Tensor::full({3}, 1.5f));
        for (int i = 1; i < 100; ++i)
            register_parameter(std::string("p").append(std::to_string(i)), Tensor::zeros({3}));
        first_impl = first.impl_ptr().get();
        first_value = first.data()[2];
    }
    const void* first_impl = nullptr;
    float first_value = 0;
};
}  // namespace

TEST_CASE("register_parameter returns a handle that later registrations leave valid", "[nn]") {
    ManyParams m;
    nn::NamedTensors ps = m.named_parameters();
    REQUIRE(ps.size() == 100);
    CHECK(m.first_impl == ps.front().second.impl_ptr().get());
    CHECK(m.first_value == 1.5f);
}

TEST_CASE("the attention registry says each variant's defaults and capabilities", "[nn]") {
    const nn::AttentionTraits& mha = nn::attention_traits("mha");
    const nn::AttentionTraits& alt1 = nn::attention_traits("alt1");
    CHECK((mha.out_proj && mha.cached_forward && mha.bilinear_heads && mha.qk_factors));
    CHECK(mha.converts_to == "alt1");
    CHECK((!alt1.out_proj && alt1.cached_forward && alt1.bilinear_heads && !alt1.qk_factors));
    CHECK(alt1.product_of == "mha");
    CHECK(mha.report_order < alt1.report_order);
    // An extension that states its default: out_proj follows the entry, not the name.
    nn::AttentionTraits t{
        [](const nn::AttentionSpec& s) { return std::make_shared<examples::LowRankDiagAttention>(s); }};
    t.out_proj = true;
    nn::register_attention("test_traits_on", t);
    models::GPTConfig c = models::preset("tiny");
    c.attention = "test_traits_on";
    CHECK(c.has_out_proj());
    CHECK(models::GPTModel(c).trf_blocks.front()->att->bilinear_heads().empty());
    // The factory-only shorthand: no capability, out_proj off.
    nn::register_attention("test_traits_bare", t.make);
    c.attention = "test_traits_bare";
    CHECK_FALSE(c.has_out_proj());
    CHECK_FALSE(nn::attention_traits("test_traits_bare").qk_factors);
    c.qk_dim = 8;
    CHECK_THROWS_WITH(models::GPTModel(c), Catch::Contains("qk_dim") && Catch::Contains("test_traits_bare"));
    CHECK_THROWS_WITH(nn::attention_traits("no_such_variant"),
                      Catch::Contains("unknown attention 'no_such_variant'"));
}
