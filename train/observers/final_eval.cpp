#include "train/observers/final_eval.h"

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "core/vmath.h"
#include "models/safetensors.h"
#include "train/dist/mpi.h"

namespace tg::train {
namespace {

struct DocLoss {
    int64_t tokens = 0;
    double loss_sum = 0;
};

// Adds each row's loss to its document. logits [B, T, V] contiguous, targets
// and docs [B * T]: the loss of row r is logsumexp(row) - row[target], the
// exponentials taken after subtracting the row's maximum.
void add_row_losses(const Tensor& logits, const std::vector<int64_t>& target, const std::vector<int64_t>& doc,
                    std::vector<DocLoss>& docs) {
    const int64_t V = logits.size(-1), N = static_cast<int64_t>(target.size());
    const float* p = logits.data();
    for (int64_t r = 0; r < N; ++r) {
        const float* row = p + r * V;
        float m = row[0];
        for (int64_t v = 1; v < V; ++v) m = std::max(m, row[v]);
        // exp(row - m) in float through core/vmath.h (1 ulp, vectorised), summed
        // in 8 double lanes in a fixed order: the figure does not depend on threads.
        double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t v = 0;
        for (; v + 8 <= V; v += 8)
            for (int k = 0; k < 8; ++k) lanes[k] += vm::exp(row[v + k] - m);
        for (; v < V; ++v) lanes[0] += vm::exp(row[v] - m);
        double s = 0;
        for (double l : lanes) s += l;
        double loss = std::log(s) + m - row[target[static_cast<size_t>(r)]];
        size_t d = static_cast<size_t>(doc[static_cast<size_t>(r)]);
        if (docs.size() <= d) docs.resize(d + 1);
        docs[d].tokens++;
        docs[d].loss_sum += loss;
    }
}

// Every window of ds in order, batch_size at a time. doc_of counts the
// end-of-text ids seen before each target (see final_eval.h).
template <class Dataset>
std::vector<DocLoss> evaluate_all(models::GPTModel& model, const Dataset& ds, int64_t n_windows, int64_t T,
                                  int64_t batch_size, int64_t eot) {
    std::vector<DocLoss> docs;
    int64_t open_doc = 0;
    std::vector<int64_t> in(static_cast<size_t>(T)), tg(static_cast<size_t>(T));
    for (int64_t w0 = 0; w0 < n_windows; w0 += batch_size) {
        const int64_t B = std::min(batch_size, n_windows - w0);
        Ids input{{B, T}, {}}, target{{B, T}, {}};
        std::vector<int64_t> doc;
        for (int64_t b = 0; b < B; ++b) {
            ds.window(w0 + b, in.data(), tg.data());
            for (int64_t i = 0; i < T; ++i) {
                if (in[static_cast<size_t>(i)] == eot) open_doc++;  // target i follows it
                doc.push_back(open_doc);
            }
            input.data.insert(input.data.end(), in.begin(), in.end());
            target.data.insert(target.data.end(), tg.begin(), tg.end());
        }
        Tensor logits = model.forward(input);
        add_row_losses(logits.is_contiguous() ? logits : logits.clone(), target.data, doc, docs);
    }
    return docs;
}

}  // namespace

void FinalEvaluation::end_run() {
    const TrainResult& res = t_.result();
    if (!res.stopped_by.empty() || !dist::is_root()) return;
    PhaseTimer timer(t_.result().wall.eval);
    models::GPTModel& model = t_.model();
    bool was_training = model.is_training();
    model.eval();
    NoGradGuard ng;
    const TrainOptions& o = t_.options();
    std::vector<DocLoss> docs;
    if (const ShardCorpus* sc = t_.shards()) {
        if (!sc->val_ds) return;  // no val shards: nothing to evaluate
        docs = evaluate_all(model, *sc->val_ds, sc->val_ds->num_windows(), sc->val_ds->context_length(),
                            o.batch_size, sc->eot_id);
    } else if (const WindowDataset* ds = t_.val_dataset()) {
        docs = evaluate_all(model, *ds, ds->size(), ds->max_length(), o.batch_size, -1);
    }
    if (was_training) model.train();
    double total = 0;
    int64_t tokens = 0;
    std::string csv = "doc,tokens,loss_sum\n";
    for (size_t d = 0; d < docs.size(); ++d) {
        if (docs[d].tokens == 0) continue;
        csv += fmt::format("{},{},{:.9g}\n", d, docs[d].tokens, docs[d].loss_sum);
        total += docs[d].loss_sum;
        tokens += docs[d].tokens;
    }
    t_.result().full_val_tokens = tokens;
    t_.result().full_val_loss = tokens ? total / static_cast<double>(tokens) : std::nan("");
    if (!o.out_dir.empty()) models::write_file_atomic(o.out_dir + "/final_eval.csv", csv);
    if (!o.quiet)
        fmt::print("Final evaluation: val loss {:.4f} over the whole split ({} tokens, {} documents)\n",
                   t_.result().full_val_loss, tokens, docs.size());
}

}  // namespace tg::train
