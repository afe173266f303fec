// tapegrad — a tape-based reverse-mode autograd over float32 CPU tensors.
//
// How the pieces fit
// ------------------
// A Tensor (core/tensor.h) is a handle to a TensorImpl: a shape, strides and
// an offset into a Storage, a flat float32 buffer that several views share.
// Storage comes from a size-keyed pool (core/storage.h), so a training loop
// that makes the same tensors every step allocates nothing after step one.
//
// Every differentiable op (core/ops/*.cpp, one small file per family) computes
// its forward result and, when gradients are wanted, appends one TapeEntry to
// the thread's Tape (core/tape.h): the op's name, the inputs, the output, the
// caller's source location, a label such as "trf_blocks.3.att.scores" and the
// backward closure, written directly under the forward it inverts.
//
// loss.backward() walks the tape in reverse. For each entry whose output has a
// gradient it hands the closure the output gradient and one GradSlot per input;
// a slot says where to write and whether to add (the input already has a
// gradient) or to assign (first contribution; the buffer is uninitialised).
// Broadcast gradients are summed back to an input's shape in one place
// (reduce_to_shape in core/ops/broadcast.h). Matmuls go to cblas_sgemm with
// transpose flags on views (core/blas.h), never through transposed copies.
//
// Modules (nn/), the GPT model (models/), optimizers (optim/) and the training
// executable with its gradient probes (train/) are built only from these ops.
//
// Named dimensions
// ----------------
// Shapes in comments throughout the code use these names, defined once here:
//   B   batch size                      T   sequence length (tokens per row)
//   C   embedding width (emb_dim, d_in) NH  number of attention heads
//   HS  head size, C / NH               V   vocabulary size (50257 for GPT-2)
//   N   rows of a flattened batch, B*T  F   feed-forward width, 4*C
#pragma once

#include "core/gradcheck.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/tape.h"
#include "core/tensor.h"
