#include "core/tensor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "core/tape.h"

namespace tg {

std::string shape_str(const Shape& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

int64_t numel_of(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
}

Shape contiguous_strides(const Shape& s) {
    Shape st(s.size());
    int64_t acc = 1;
    for (size_t i = s.size(); i-- > 0;) {
        st[i] = acc;
        acc *= s[i];
    }
    return st;
}

std::string loc_str(const Loc& loc) {
    const char* f = loc.file_name();
    // Paths relative to the repository read better than absolute build paths.
    if (const char* p = std::strstr(f, "/core/"))
        f = p + 1;
    else if (const char* p2 = std::strstr(f, "/nn/"))
        f = p2 + 1;
    else if (const char* p3 = std::strstr(f, "/models/"))
        f = p3 + 1;
    else if (const char* p4 = std::strstr(f, "/train/"))
        f = p4 + 1;
    else if (const char* p5 = std::strstr(f, "/tests/"))
        f = p5 + 1;
    return fmt::format("{}:{} ({})", f, loc.line(), loc.function_name());
}

void fail(const char* op, const Loc& loc, const std::string& what) {
    throw Error(fmt::format("tapegrad: {}: {} [called at {}]", op, what, loc_str(loc)));
}

// A 0-d tensor has dims 0 and -1, as in PyTorch: a scalar is one element along its one dim.
int64_t wrap_dim(int64_t d, int64_t ndim, const char* op, const Loc& loc) {
    int64_t n = std::max<int64_t>(ndim, 1);
    int64_t w = d < 0 ? d + n : d;
    if (w < 0 || w >= n)
        fail(op, loc,
             fmt::format("dim {} out of range for a tensor of rank {} (expected in [{}, {}])", d, ndim, -n,
                         n - 1));
    return w;
}

static Tensor make(const Shape& shape) {
    for (int64_t d : shape)
        if (d < 0) throw Error("tapegrad: empty: negative dimension in shape " + shape_str(shape));
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = Storage::allocate(static_cast<size_t>(numel_of(shape)));
    impl->shape = shape;
    impl->strides = contiguous_strides(shape);
    return Tensor(std::move(impl));
}

Tensor Tensor::empty(const Shape& shape) { return make(shape); }
Tensor Tensor::full(const Shape& shape, float value) {
    Tensor t = make(shape);
    std::fill_n(t.data(), t.numel(), value);
    return t;
}
Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.0f); }
Tensor Tensor::ones(const Shape& shape) { return full(shape, 1.0f); }

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
    if (static_cast<int64_t>(values.size()) != numel_of(shape))
        throw Error(fmt::format("tapegrad: from_vector: {} values do not fill shape {}", values.size(),
                                shape_str(shape)));
    Tensor t = make(shape);
    std::copy(values.begin(), values.end(), t.data());
    return t;
}

Tensor Tensor::arange(int64_t n) {
    Tensor t = make({n});
    for (int64_t i = 0; i < n; ++i) t.data()[i] = static_cast<float>(i);
    return t;
}

int64_t Tensor::size(int64_t d, Loc loc) const {
    if (dim() == 0) fail("size", loc, fmt::format("dim {} of a 0-d tensor (it has no dimensions)", d));
    return impl_->shape[wrap_dim(d, dim(), "size", loc)];
}

bool Tensor::is_contiguous() const {
    int64_t acc = 1;
    for (size_t i = impl_->shape.size(); i-- > 0;) {
        if (impl_->shape[i] != 1 && impl_->strides[i] != acc) return false;
        acc *= impl_->shape[i];
    }
    return true;
}

float Tensor::at(const std::vector<int64_t>& idx) const {
    if (static_cast<int64_t>(idx.size()) != dim())
        throw Error(fmt::format("tapegrad: at: {} indices for shape {}", idx.size(), shape_str(shape())));
    int64_t off = 0;
    for (size_t i = 0; i < idx.size(); ++i) {
        if (idx[i] < 0 || idx[i] >= impl_->shape[i])
            throw Error(fmt::format("tapegrad: at: index {} out of range for dim {} of shape {}", idx[i], i,
                                    shape_str(shape())));
        off += idx[i] * impl_->strides[i];
    }
    return data()[off];
}

float Tensor::item() const {
    if (numel() != 1)
        throw Error("tapegrad: item: tensor of shape " + shape_str(shape()) + " is not a scalar");
    return data()[0];
}

std::vector<float> Tensor::to_vector() const {
    std::vector<float> out(static_cast<size_t>(numel()));
    if (is_contiguous()) {
        std::copy_n(data(), numel(), out.begin());
        return out;
    }
    std::vector<int64_t> idx(shape().size(), 0);
    for (int64_t i = 0; i < numel(); ++i) {
        int64_t off = 0;
        for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * strides()[d];
        out[i] = data()[off];
        for (size_t d = idx.size(); d-- > 0;) {
            if (++idx[d] < shape()[d]) break;
            idx[d] = 0;
        }
    }
    return out;
}

Tensor& Tensor::requires_grad_(bool on) {
    if (!is_leaf())
        throw Error("tapegrad: requires_grad_: only leaf tensors can change requires_grad ('" + label() +
                    "')");
    impl_->requires_grad = on;
    return *this;
}

Tensor& Tensor::retain_grad() {
    impl_->retain_grad = true;
    return *this;
}

void Tensor::register_hook(GradHook hook) {
    if (!requires_grad())
        throw Error("tapegrad: register_hook: tensor '" + label() + "' does not require grad");
    impl_->hooks.push_back(std::move(hook));
}

void Tensor::backward(const Tensor& grad, bool retain_graph, Loc loc) const {
    run_backward(*this, grad, retain_graph, loc);
}

Tensor& Tensor::named(const std::string& name) {
    impl_->label = scoped(name);
    return *this;
}

Tensor Tensor::detach() const {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = impl_->storage;
    impl->offset = impl_->offset;
    impl->shape = impl_->shape;
    impl->strides = impl_->strides;
    impl->label = impl_->label;
    return Tensor(std::move(impl));
}

Tensor Tensor::clone() const {
    Tensor t = make(shape());
    std::vector<float> v = to_vector();
    std::copy(v.begin(), v.end(), t.data());
    t.impl_->label = impl_->label;
    return t;
}

// Nested-bracket print, eliding the middle of long dimensions like NumPy.
static void print_rec(std::ostringstream& os, const Tensor& t, std::vector<int64_t>& idx, size_t d,
                      int64_t max_per_dim) {
    if (d == t.shape().size()) {
        os << fmt::format("{:.6g}", t.at(idx));
        return;
    }
    os << "[";
    int64_t n = t.shape()[d];
    for (int64_t i = 0; i < n; ++i) {
        if (n > max_per_dim && i == max_per_dim / 2) {
            os << "..., ";
            i = n - max_per_dim / 2;
        }
        idx[d] = i;
        print_rec(os, t, idx, d + 1, max_per_dim);
        if (i + 1 < n) os << ", ";
    }
    os << "]";
}

std::string Tensor::to_string(int64_t max_per_dim) const {
    if (!defined()) return "Tensor(undefined)";
    std::ostringstream os;
    os << "Tensor(";
    if (!label().empty()) os << "'" << label() << "', ";
    os << "shape=" << shape_str(shape());
    if (requires_grad()) os << ", requires_grad";
    os << ", ";
    std::vector<int64_t> idx(shape().size(), 0);
    print_rec(os, *this, idx, 0, max_per_dim);
    os << ")";
    return os.str();
}

}  // namespace tg
