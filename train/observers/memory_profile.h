// The memory half of `tapegrad train --profile`: what one training step holds
// above the floor, phase by phase, and who holds it.
//
// The floor is what no implementation of the step can avoid: parameters, their
// gradients and AdamW's m and v, 16 bytes a parameter. Above it sit the tensors
// forward saves for backward (the activations), the logits and their gradient,
// and the pool's parked buffers. For each phase (forward, backward, optimizer)
// the profile reads the process's peak RSS within the phase (the peak is reset
// between phases, core/memory.h) and the pool's live bytes at its end; at the end
// of forward it lists the saved tensors by the tape entry that allocated them,
// summed over the blocks ("trf_blocks.*.att.weights").
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/memory.h"

namespace tg::train {

class MemoryProfile {
public:
    explicit MemoryProfile(size_t floor_bytes) : floor_(floor_bytes) {}
    void begin_step();     // before forward: tracking on, peak reset
    void after_forward();  // the tape is whole: holders; peak reset
    void after_backward();
    void after_update();
    void print(std::ostream& os, size_t top = 12) const;

    struct Phase {
        std::string name;
        Rss rss;                 // peak within the phase and the RSS at its end
        size_t pool_live = 0;    // bytes of live pooled buffers at its end
        size_t pool_parked = 0;  // bytes parked in the pool at its end
    };
    struct Holder {  // saved tensors of one label pattern
        std::string op, pattern;
        size_t bytes = 0;
        int entries = 0;
    };
    const std::vector<Phase>& phases() const { return phases_; }
    const std::vector<Holder>& holders() const { return holders_; }
    bool peaks_reset() const { return reset_ok_; }

private:
    void phase(const char* name);
    size_t floor_;
    bool reset_ok_ = true;
    std::vector<Phase> phases_;
    std::vector<Holder> holders_;
};

// "trf_blocks.11.att.heads.3.weights" -> "trf_blocks.*.att.heads.*.weights".
std::string label_pattern(const std::string& label);

}  // namespace tg::train
