// Tape::dump and Tape::to_dot: the tape as text (tapegrad train --dump-tape,
// gdb's `tg-tape`) and as a Graphviz graph. Read-only views of the entries.
#include <fmt/format.h>

#include <ostream>
#include <unordered_set>

#include "core/tape.h"

namespace tg {

// One line per entry. Each input reads "label[shape] <- #k" when entry k of this
// tape made it (or "leaf"), then "needs grad" or "no grad": what backward will
// write a gradient for.
void Tape::dump(std::ostream& os) const {
    os << fmt::format("tape generation {}, {} entries\n", generation_, entries_.size());
    os << "#index op label [output shape] <- inputs: label[shape] (<- #entry that made it | leaf), "
          "needs grad | no grad  @ call site\n";
    for (size_t i = 0; i < entries_.size(); ++i) {
        const TapeEntry& e = entries_[i];
        std::string ins;
        for (const Tensor& t : e.inputs) {
            if (!t.defined()) continue;
            const TensorImpl* ti = t.impl();
            bool made_here = !ti->is_leaf() && ti->generation == generation_;
            ins += fmt::format("{}{}{} {}, {}", ins.empty() ? "" : "; ", t.label().empty() ? "?" : t.label(),
                               shape_str(t.shape()), made_here ? fmt::format("<- #{}", ti->entry) : "leaf",
                               t.requires_grad() ? "needs grad" : "no grad");
        }
        os << fmt::format("#{:<4} {:<14} {:<40} {:<16} <- {}  @ {}\n", i, e.op, e.output.label(),
                          shape_str(e.output.shape()), ins, loc_str(e.where));
    }
}

void Tape::to_dot(std::ostream& os) const {
    os << "digraph tape {\n  rankdir=LR;\n  node [fontname=\"monospace\", fontsize=10];\n";
    std::unordered_set<const TensorImpl*> leaves;
    for (size_t i = 0; i < entries_.size(); ++i) {
        const TapeEntry& e = entries_[i];
        os << fmt::format("  e{} [shape=box, label=\"#{} {}\\n{}\\n{}\"];\n", i, i, e.op, e.output.label(),
                          shape_str(e.output.shape()));
        for (const Tensor& t : e.inputs) {
            if (!t.defined()) continue;
            const TensorImpl* ti = t.impl();
            if (!ti->is_leaf() && ti->generation == generation_) {
                os << fmt::format("  e{} -> e{};\n", ti->entry, i);
            } else {
                if (leaves.insert(ti).second)
                    os << fmt::format("  l{} [shape=ellipse, label=\"{}\\n{}{}\"];\n",
                                      static_cast<const void*>(ti), t.label().empty() ? "leaf" : t.label(),
                                      shape_str(t.shape()), t.requires_grad() ? "\\nrequires_grad" : "");
                os << fmt::format("  l{} -> e{};\n", static_cast<const void*>(ti), i);
            }
        }
    }
    os << "}\n";
}

}  // namespace tg
