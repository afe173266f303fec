// `tapegrad train --dump-tape FILE [--dump-tape-step N]`: the tape of one
// training step, written after forward and loss and before backward walks (and
// frees) the entries. FILE gets Tape::dump's text (index, op, label, output
// shape, each input with the entry that made it and whether it needs grad, call
// site) and FILE.dot the same graph for Graphviz (`dot -Tsvg FILE.dot`). The
// labels listed are the ones TAPEGRAD_BREAK_ON accepts (docs/debugging.md).
#pragma once

#include <cstdint>
#include <string>

#include "train/loop/observer.h"
#include "train/loop/trainer.h"

namespace tg::train {

// Both files are written atomically; `what` names the run in the text's header.
void write_tape_dump(const std::string& path, int64_t step, const std::string& what);

// The observer behind the flags. The step defaults to the run's first (after
// --resume, the step it resumes at); a step the run will not make, or a FILE in a
// folder that does not exist, is refused before training starts.
class TapeDump : public StepObserver {
public:
    explicit TapeDump(const Trainer& t);
    void begin_step(int64_t step) override { step_ = step; }
    void before_backward() override;

private:
    std::string path_, what_;
    int64_t at_ = 0, step_ = -1;
};

}  // namespace tg::train
