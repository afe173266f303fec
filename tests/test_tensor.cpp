// Tensor storage, views and layout.
#include <catch2/catch.hpp>

#include "core/tapegrad.h"

using namespace tg;

TEST_CASE("views share storage and index by strides", "[tensor]") {
    Tensor a = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
    Tensor t = a.transpose(0, 1);
    REQUIRE(t.shape() == Shape{3, 2});
    REQUIRE(t.storage() == a.storage());
    REQUIRE_FALSE(t.is_contiguous());
    CHECK(t.at({2, 1}) == 5.0f);
    CHECK(t.at({1, 0}) == 1.0f);
    Tensor c = t.contiguous();
    REQUIRE(c.is_contiguous());
    CHECK(c.to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
    Tensor s = a.slice(1, 1, 3);
    CHECK(s.to_vector() == std::vector<float>{1, 2, 4, 5});
    Tensor p = Tensor::arange(24).reshape({2, 3, 4}).permute({2, 0, 1});
    REQUIRE(p.shape() == Shape{4, 2, 3});
    CHECK(p.at({3, 1, 2}) == 23.0f);
    CHECK(p.at({1, 0, 2}) == 9.0f);
    // reshape of a strided view copies (a view cannot express it)
    Tensor r = t.reshape({6});
    CHECK(r.storage() != a.storage());
    CHECK(r.to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("view of a non-contiguous tensor is an error naming the shapes", "[tensor]") {
    Tensor a = Tensor::zeros({2, 3}).transpose(0, 1);
    REQUIRE_THROWS_WITH(a.view({6}), Catch::Contains("view") && Catch::Contains("[3, 2]") &&
                                         Catch::Contains("test_tensor.cpp"));
    REQUIRE_THROWS_WITH(Tensor::zeros({2, 3}).view({4, -1}), Catch::Contains("invalid for 6 elements"));
}

TEST_CASE("creation helpers", "[tensor]") {
    CHECK(Tensor::full({2, 2}, 3.5f).to_vector() == std::vector<float>(4, 3.5f));
    CHECK(Tensor::ones({3}).to_vector() == std::vector<float>(3, 1.0f));
    CHECK(Tensor::zeros({0, 4}).numel() == 0);
    CHECK(Tensor::arange(3).to_vector() == std::vector<float>{0, 1, 2});
    REQUIRE_THROWS_WITH(Tensor::from_vector({1, 2, 3}, {2, 2}), Catch::Contains("3 values"));
    CHECK(Tensor::scalar(2.0f).item() == 2.0f);
}

TEST_CASE("to_string prints label, shape and elided values", "[tensor]") {
    Tensor a = Tensor::arange(20).reshape({2, 10});
    a.set_label("demo");
    std::string s = a.to_string();
    CHECK_THAT(s, Catch::Contains("'demo'") && Catch::Contains("shape=[2, 10]") && Catch::Contains("..."));
}

TEST_CASE("the storage pool reuses freed buffers of the same size", "[tensor]") {
    { Tensor warm = Tensor::empty({123457}); }
    PoolStats before = pool_stats();
    for (int i = 0; i < 5; ++i) {
        Tensor t = Tensor::empty({123457});
    }
    PoolStats after = pool_stats();
    CHECK(after.fresh_allocations == before.fresh_allocations);
    CHECK(after.reuses == before.reuses + 5);
}

TEST_CASE("size(d) out of range blames the caller's line, not core/tensor.cpp", "[tensor]") {
    Tensor t = Tensor::zeros({2, 3});
    CHECK(t.size(-1) == 3);
    CHECK(t.size(0) == 2);
    int line = __LINE__ + 1;
    REQUIRE_THROWS_WITH(t.size(2),
                        Catch::Contains("tapegrad: size: dim 2 out of range for a tensor of rank 2") &&
                            Catch::Contains("test_tensor.cpp:" + std::to_string(line)) &&
                            !Catch::Contains("core/tensor.cpp"));
    REQUIRE_THROWS_WITH(Tensor::scalar(1).size(0),
                        Catch::Contains("0-d tensor") && Catch::Contains("test_tensor.cpp"));
}
