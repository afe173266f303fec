// libFuzzer target: prepare's document readers (--format file, lines, jsonl,
// brown) on any bytes, then GPT-2's tokenizer on every document, as prepare
// does. A reader may refuse an input only with tg::Error (naming the line);
// ASan and UBSan watch the rest. The first input byte picks the format.
// `make fuzz` runs it for a bounded time from the-verdict.txt and small
// jsonl/brown seeds (Makefile).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "train/data/prepare.h"
#include "train/tokenizer/tokenizer.h"

namespace {

const tg::train::Tokenizer& gpt2() {
    static const auto tok =
        std::make_unique<tg::train::Tokenizer>(std::string(TAPEGRAD_SOURCE_DIR) + "/data/encoder.json",
                                               std::string(TAPEGRAD_SOURCE_DIR) + "/data/vocab.bpe");
    return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    static const char* const formats[] = {"file", "lines", "jsonl", "brown"};
    tg::train::PrepareOptions o;
    o.format = formats[data[0] % 4];
    std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        for (const std::string& doc : tg::train::split_documents(text, "fuzz input", o))
            (void)gpt2().encode(doc);
    } catch (const tg::Error&) {}
    return 0;
}
