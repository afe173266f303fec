// Tensor: a float32 view (shape, strides, offset) into shared Storage, plus the
// autograd state a tape needs (requires_grad, grad, label, producing entry).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/storage.h"

namespace tg {

using Shape = std::vector<int64_t>;

// The caller's source location, recorded on every tape entry. The interface of
// std::source_location, built on the __builtin_FILE/LINE/FUNCTION intrinsics that
// both GCC and Clang evaluate at the call site of a default argument (Clang 14's
// std::source_location does not compile against libstdc++ 12).
class Loc {
public:
    static constexpr Loc current(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE(),
                                 const char* function = __builtin_FUNCTION()) {
        return Loc(file, line, function);
    }
    constexpr Loc() = default;
    constexpr const char* file_name() const { return file_; }
    constexpr unsigned line() const { return line_; }
    constexpr const char* function_name() const { return function_; }

private:
    constexpr Loc(const char* f, unsigned l, const char* fn) : file_(f), line_(l), function_(fn) {}
    const char* file_ = "";
    unsigned line_ = 0;
    const char* function_ = "";
};

std::string shape_str(const Shape& s);
int64_t numel_of(const Shape& s);
Shape contiguous_strides(const Shape& s);
std::string loc_str(const Loc& loc);

// Every error tapegrad raises: the message names the op, the shapes involved and
// the caller's source location.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};
[[noreturn]] void fail(const char* op, const Loc& loc, const std::string& what);

class Tensor;
// A hook sees the gradient flowing into a tensor and may return a replacement
// (or an undefined Tensor to keep the gradient as is).
using GradHook = std::function<Tensor(const Tensor& grad)>;

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    int64_t offset = 0;
    Shape shape;
    Shape strides;

    bool requires_grad = false;
    bool retain_grad = false;
    std::shared_ptr<TensorImpl> grad;  // null until a backward writes it
    std::string label;

    // Set for outputs of recorded ops: which tape generation and entry made it.
    int64_t entry = -1;
    uint64_t generation = 0;
    std::vector<GradHook> hooks;

    bool is_leaf() const { return entry < 0; }
};

class Tensor {
public:
    Tensor() = default;
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // ---- creation (all contiguous, row-major) ----
    static Tensor empty(const Shape& shape);  // uninitialised (NaN in debug)
    static Tensor zeros(const Shape& shape);
    static Tensor ones(const Shape& shape);
    static Tensor full(const Shape& shape, float value);
    static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
    static Tensor arange(int64_t n);
    static Tensor scalar(float v) { return full({}, v); }

    // ---- introspection ----
    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const { return impl_->shape; }
    const Shape& strides() const { return impl_->strides; }
    int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
    // Size of dimension d (negative counts from the end); out of range fails
    // naming the caller's line.
    int64_t size(int64_t d, Loc loc = Loc::current()) const;
    int64_t numel() const { return numel_of(impl_->shape); }
    int64_t offset() const { return impl_->offset; }
    bool is_contiguous() const;
    float* data() { return impl_->storage->data() + impl_->offset; }
    const float* data() const { return impl_->storage->data() + impl_->offset; }
    const std::shared_ptr<Storage>& storage() const { return impl_->storage; }
    TensorImpl* impl() const { return impl_.get(); }
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

    // Element access by multi-index (slow; for tests and printing).
    float at(const std::vector<int64_t>& idx) const;
    float item() const;
    std::vector<float> to_vector() const;  // row-major copy of the logical values

    // ---- autograd ----
    bool requires_grad() const { return impl_->requires_grad; }
    Tensor& requires_grad_(bool on = true);
    Tensor grad() const { return Tensor(impl_->grad); }
    void set_grad(const Tensor& g) { impl_->grad = g.impl_ptr(); }
    void zero_grad() { impl_->grad.reset(); }  // PyTorch's set_to_none; buffer returns to the pool
    bool is_leaf() const { return impl_->is_leaf(); }
    Tensor& retain_grad();
    void register_hook(GradHook hook);
    void backward(const Tensor& grad = Tensor(), bool retain_graph = false, Loc loc = Loc::current()) const;

    // A label for dumps, errors and the debugger. named("scores") prefixes the
    // current LabelScope, e.g. "trf_blocks.3.att.scores".
    const std::string& label() const { return impl_->label; }
    Tensor& named(const std::string& name);
    Tensor& set_label(const std::string& full) {
        impl_->label = full;
        return *this;
    }

    // ---- views and layout (ops with backward, in core/ops/view.cpp) ----
    Tensor reshape(const Shape& shape, Loc loc = Loc::current()) const;
    Tensor view(const Shape& shape, Loc loc = Loc::current()) const;
    Tensor transpose(int64_t d0, int64_t d1, Loc loc = Loc::current()) const;
    Tensor permute(const Shape& order, Loc loc = Loc::current()) const;
    Tensor contiguous(Loc loc = Loc::current()) const;
    Tensor slice(int64_t dim, int64_t start, int64_t end, Loc loc = Loc::current()) const;
    Tensor detach() const;  // shares storage, no tape history
    Tensor clone() const;   // contiguous copy without history

    std::string to_string(int64_t max_per_dim = 6) const;

private:
    std::shared_ptr<TensorImpl> impl_;
};

// Token ids: int64 like PyTorch's LongTensor, row-major. Embedding takes them as
// indices; cross_entropy takes them as targets (-100 = ignore_index).
struct Ids {
    Shape shape;
    std::vector<int64_t> data;
    int64_t numel() const { return static_cast<int64_t>(data.size()); }
};

// Normalise a possibly negative dimension index against ndim.
int64_t wrap_dim(int64_t d, int64_t ndim, const char* op, const Loc& loc);

}  // namespace tg
