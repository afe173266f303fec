// libFuzzer target: the sweep's state files as the sweep reads them (done.json
// of a finished run, orders/seed<S>.json), on any bytes. A damaged file may be
// refused only with tg::Error naming it, never with a raw library exception
// or a crash. The first input byte picks the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "train/study/sweep.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        if (data[0] % 2 == 0)
            (void)tg::train::read_done_json(text, "done.json", "run");
        else
            (void)tg::train::read_orders_json(text, "orders/seed1.json");
    } catch (const tg::Error&) {}
    return 0;
}
