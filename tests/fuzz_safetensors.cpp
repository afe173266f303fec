// libFuzzer target: parse_safetensors must reject any byte string with tg::Error
// and never read out of bounds (ASan watches). `make fuzz` runs it for a bounded
// time from the committed fixtures as seed corpus.
#include <cstddef>
#include <cstdint>

#include "models/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        tg::models::SafeTensors st = tg::models::parse_safetensors(data, size, "fuzz input");
        for (auto& [name, t] : st.f32) (void)t.to_vector();
    } catch (const tg::Error&) {}
    return 0;
}
