// The one wall clock of the training code's own timings (the reducer's
// communication figures in train/dist/grad_reducer.h, --profile's step breakdown in
// train/observers/standard.h): seconds on the monotonic clock, for differences only.
#pragma once

#include <chrono>

namespace tg::train {

inline double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace tg::train
