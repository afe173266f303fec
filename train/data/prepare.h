// `tapegrad prepare`: text corpora -> GPT-2 token shards in llm.c's format.
//
//   inputs (files, directory trees walked in name order, "-" for stdin)
//     -> documents (--format: file = one per file, lines = one per non-empty
//        line, jsonl = one per line from a JSON object's text field, brown =
//        a Brown Corpus sample with its POS tags stripped, one per file)
//     -> each document's tokens: <|endoftext|> (50256) then encode_ordinary(doc),
//        as llm.c's data scripts do, tokenized on all threads
//     -> split: a document goes to val when hash(seed, its bytes) < val_fraction
//        (u = top 53 bits of FNV-1a-64 over the seed and the bytes, mixed by
//        SplitMix64, / 2^53), so the rule depends on neither the order nor the
//        other documents, and duplicates land in the same split
//     -> train_NNNNNN.bin / val_NNNNNN.bin of shard_tokens tokens each (the last
//        one shorter; documents run on across shards) and manifest.json
//        (sources, documents, tokens per shard, tokenizer, CRC-32 checksums);
//     -> with --vocab compact, the shards rewritten in dense ids and the map
//        recorded in the manifest's "vocabulary".
//
// Every file is written into a temporary folder and moved into --out at the
// end (a failed prepare leaves the old set), --out is locked (one prepare at a
// time) and is never read as an input; shards of an earlier run that this run did
// not write are removed, and the output has no timestamps: the same inputs and
// options give identical bytes. Empty inputs are skipped with a warning;
// invalid UTF-8 is replaced with U+FFFD as the tokenizer does.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "train/tokenizer/tokenizer.h"

namespace tg::train {

struct PrepareOptions {
    std::vector<std::string> inputs;
    std::string out_dir;
    std::string vocab_dir = "data";  // encoder.json and vocab.bpe
    std::string format = "file";     // file | lines | jsonl | brown
    std::string text_field = "text";
    double val_fraction = 0.1;
    uint64_t seed = 1337;
    int64_t shard_tokens = 100'000'000;  // llm.c's FineWeb shard size
    // gpt2: the shards hold GPT-2 ids. compact: the distinct ids of the corpus
    // (train and val) relabelled 0 .. K-1, the map in the manifest (train/data/vocab_map.h).
    std::string vocab = "gpt2";
    bool progress = true;                // a progress line when stderr is a terminal
};

struct PrepareResult {
    int64_t sources = 0, documents_train = 0, documents_val = 0, tokens_train = 0, tokens_val = 0;
    int64_t bytes = 0, shards = 0;
    double seconds = 0;
};

// Throws naming the input, file and line, or option at fault.
PrepareResult prepare(const PrepareOptions& opt, std::ostream& warnings);

// The documents of one source's text by o.format (file, lines, jsonl with
// o.text_field, brown); throws naming `source` and the line of a bad JSON line.
std::vector<std::string> split_documents(const std::string& text, const std::string& source,
                                         const PrepareOptions& o);
// The split rule: true when the document goes to val.
bool goes_to_val(const std::string& document, uint64_t seed, double val_fraction);
// One Brown Corpus sample (word/tag tokens, sentences on tab-indented lines) as
// plain text: tags stripped, `` and '' -> ", punctuation attached, sentences
// joined by a space.
std::string brown_to_text(const std::string& tagged);

}  // namespace tg::train
