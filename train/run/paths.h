// Where the tapegrad executable finds its run-time data: the GPT-2 vocabulary
// (encoder.json, vocab.bpe), the-verdict.txt, and gdb/tapegrad_printers.py.
//   1. the folder named by the environment variable TAPEGRAD_DATA, if set;
//   2. <folder of the running executable>/../share/tapegrad, read through
//      /proc/self/exe: P/bin/tapegrad finds P/share/tapegrad wherever the
//      install prefix P was moved, and the build tree mirrors that layout
//      (build/release/train/tapegrad -> build/release/share/tapegrad).
// No path of the build machine is compiled in.
#pragma once

#include <string>

namespace tg::train {

// The data folder; throws naming the places it looked when there is none.
std::string data_dir();
// data_dir()/name, checked to exist; the error says which flag overrides it.
std::string data_file(const std::string& name, const std::string& flag);

}  // namespace tg::train
