// --final-eval full: after the last step, the model's loss over EVERY window of
// the validation split, not the eval_iter batches the book's lines use. For
// Brown that is the whole 144,803-token split; a run's final figure then has no
// subset noise, and the per-document sums let a report bootstrap over documents.
//
//   loss(token p) = logsumexp(logits_p) - logits_p[target_p]     (nats)
//   full_val_loss = sum over evaluated targets / their count
//
// Documents are delimited by the end-of-text id (GPT-2's 50256, or what a
// compact vocabulary maps it to): target p belongs to the document that the
// last end-of-text before p opened (an end-of-text predicted as a target closes
// the document it ends). <out>/final_eval.csv gets one row per document:
//   doc,tokens,loss_sum
// The book's text pipeline has no end-of-text ids: one document. Rank 0 alone
// evaluates under mpirun (no collective; the other ranks do not wait on it).
// A run stopped early (SIGINT, SIGTERM, divergence) is not evaluated.
#pragma once

#include "train/loop/trainer.h"

namespace tg::train {

class FinalEvaluation : public StepObserver {
public:
    explicit FinalEvaluation(Trainer& t) : t_(t) {}
    void end_run() override;

private:
    Trainer& t_;
};

}  // namespace tg::train
