// `tapegrad tokenize`: GPT-2 BPE ids of stdin, one per line (or --decode: ids
// back to text).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "core/blas.h"
#include "core/tensor.h"
#include "train/run/preflight.h"
#include "train/cli/commands.h"
#include "train/cli/flags.h"
#include "train/run/paths.h"
#include "train/tokenizer/tokenizer.h"

namespace tg::cli {
namespace {

struct TokenizeFlags {
    bool allow_special = false, decode = false;
    int threads = 0;        // 0: use_threads() picks
    std::string vocab_dir;  // empty: the data folder (train/run/paths.h)
};

int run_tokenize(const TokenizeFlags& f) {
    std::string dir = f.vocab_dir.empty() ? train::data_dir() : f.vocab_dir;
    train::Tokenizer tok(dir + "/encoder.json", dir + "/vocab.bpe");
    std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (f.decode) {
        std::vector<int64_t> ids;
        std::istringstream is(in);
        std::string w;
        while (is >> w) {  // whole decimal ids only: "12.5" is not 12
            try {
                ids.push_back(train::parse_int_strict("tokenize --decode", w, 0, tok.vocab_size() - 1));
            } catch (const Error&) {
                throw Error(
                    fmt::format("tapegrad: tokenize --decode: '{}' is not a token id (an integer in [0, {}])",
                                w, tok.vocab_size() - 1));
            }
        }
        std::cout << tok.decode(ids);
        return 0;
    }
    train::Tokenizer::note_invalid_utf8("stdin", in);
    use_threads(f.threads);
    std::string out;
    for (int64_t id : tok.encode_parallel(in, f.allow_special)) {
        out += std::to_string(id);
        out += '\n';
    }
    std::cout << out;
    return 0;
}

}  // namespace

Command tokenize_command() {
    return {"tokenize", "GPT-2 BPE: text on stdin, one id per line on stdout", [](CLI::App& sub) -> Action {
                auto f = std::make_shared<TokenizeFlags>();
                sub.add_flag("--allow-special", f->allow_special,
                             "treat <|endoftext|> as the special token 50256");
                sub.add_flag("--decode", f->decode, "the reverse: ids on stdin, text on stdout");
                sub.add_option(
                    "--vocab-dir", f->vocab_dir,
                    "folder with encoder.json and vocab.bpe (default: the data folder, train/run/paths.h)");
                sub.add_option("--threads", f->threads,
                               "encode pieces of the text on this many threads" +
                                   std::string(kThreadsDefault))

                    ->check(CLI::PositiveNumber);
                return [f] { return run_tokenize(*f); };
            }};
}

}  // namespace tg::cli
