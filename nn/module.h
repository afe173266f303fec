// Module: a named node of a model tree, owning parameters, buffers and children.
// Dotted names follow PyTorch's state_dict exactly ("trf_blocks.0.att.W_query.weight").
//
// A layer derives from Layer<itself> and is called, not forwarded:
//   class Linear : public nn::Layer<Linear> { public: Tensor forward(const Tensor& x) const; };
//   Tensor y = (*fc)(x);   // opens the LabelScope "fc", then calls fc->forward(x)
// Layer<D>::operator() pushes the module's local name as a LabelScope around
// D::forward, whatever arguments that forward takes, so every tape entry the call
// records is labelled with its place in the tree ("trf_blocks.3.att.scores") and no
// layer manages its scope by hand. (C++20 has no deducing `this`, so the operator
// lives in this small CRTP base rather than in Module itself.) Calling forward()
// directly still computes the right values but leaves the module's name out of
// the labels.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tapegrad.h"

namespace tg::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
public:
    virtual ~Module() = default;
    Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // PyTorch's order: own parameters, then own buffers, then children, recursively.
    NamedTensors named_parameters() const;
    NamedTensors named_buffers() const;
    NamedTensors state_dict() const;  // parameters and buffers
    std::vector<Tensor> parameters() const;
    int64_t num_parameters() const;

    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }
    void zero_grad();

    // Copy values into the existing tensors (optimizers keep their references).
    // strict: every name must be present and no other name given; a shape mismatch
    // is always an error. Buffers missing from `sd` are kept.
    void load_state_dict(const std::map<std::string, Tensor>& sd, bool strict = true);

    const std::string& local_name() const { return name_; }
    // Give every parameter its dotted name as label (for dumps and the debugger).
    void label_parameters();

protected:
    // Return a handle to the registered tensor (a Tensor shares its TensorImpl, so
    // the handle, the module's entry and the optimizer see one tensor), valid
    // whatever is registered next: a reference into the list would dangle once a
    // later registration grows it.
    Tensor register_parameter(const std::string& name, Tensor t);
    Tensor register_buffer(const std::string& name, Tensor t);
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
        m->name_ = name;
        children_.emplace_back(name, m);
        return m;
    }

private:
    void collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const;
    NamedTensors params_, buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
    std::string name_;
};

// The base of every layer: Module plus the call operator described above.
template <class D>
class Layer : public Module {
public:
    template <class... Args>
    decltype(auto) operator()(Args&&... args) {
        LabelScope scope(local_name());
        return static_cast<D&>(*this).forward(std::forward<Args>(args)...);
    }
    template <class... Args>
    decltype(auto) operator()(Args&&... args) const {
        LabelScope scope(local_name());
        return static_cast<const D&>(*this).forward(std::forward<Args>(args)...);
    }
};

}  // namespace tg::nn
