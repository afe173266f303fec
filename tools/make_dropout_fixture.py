#!/usr/bin/python3
"""Reference trajectory with all the randomness on: the book's Chapter 5 flow in
PyTorch (manual_seed(123) right before GPTModel, shuffled DataLoader, dropout 0.1,
evaluate_model every eval_freq steps reading the train loader too) for a small
GPT over GPT-2's vocabulary, 12 steps. tapegrad draws the same random numbers in
the same order (tests/test_train.cpp, "dropout-on trajectory").
Writes tests/fixtures/dropout_trajectory.json.
Run: /usr/bin/python3 tools/make_dropout_fixture.py
"""
import json
import os
import sys

import torch
from torch.utils.data import DataLoader, Dataset

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_gpt import GPT_CONFIG_124M, GPTModel  # noqa: E402


class Windows(Dataset):  # the book's GPTDatasetV1 on token ids
    def __init__(self, ids, max_length, stride):
        self.x, self.y = [], []
        for i in range(0, len(ids) - max_length, stride):
            self.x.append(torch.tensor(ids[i:i + max_length]))
            self.y.append(torch.tensor(ids[i + 1:i + max_length + 1]))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def loss_batch(model, x, y):
    return torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())


def loss_loader(loader, model, num_batches):
    if len(loader) == 0:
        return float("nan")
    num_batches = min(num_batches, len(loader))
    total = 0.0
    for i, (x, y) in enumerate(loader):
        if i < num_batches:
            total += loss_batch(model, x, y).item()
        else:
            break
    return total / num_batches


def book_loaders(T):
    """The book's loaders over the-verdict's train/val ids: batch 2, train shuffled with drop_last."""
    with open(os.path.join(HERE, "..", "tests", "fixtures", "tokenizer.json")) as f:
        tok = json.load(f)
    train = DataLoader(Windows(tok["verdict_train_ids"], T, T), batch_size=2, shuffle=True, drop_last=True,
                       num_workers=0)
    val = DataLoader(Windows(tok["verdict_val_ids"], T, T), batch_size=2, shuffle=False, drop_last=False,
                     num_workers=0)
    return train, val


def run(attention):
    cfg = dict(GPT_CONFIG_124M, context_length=32, emb_dim=64, n_heads=4, n_layers=2, drop_rate=0.1,
               attention=attention)
    train_loader, val_loader = book_loaders(cfg["context_length"])
    torch.manual_seed(123)
    model = GPTModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
    losses, evals, step = [], [], -1
    model.train()
    for x, y in train_loader:
        if step + 1 >= 12:
            break
        opt.zero_grad()
        loss = loss_batch(model, x, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 5 == 0:
            model.eval()
            with torch.no_grad():
                tl, vl = loss_loader(train_loader, model, 5), loss_loader(val_loader, model, 5)
            model.train()
            evals.append([step, tl, vl])
    return {"losses": losses, "evals": evals}


if __name__ == "__main__":
    out = {a: run(a) for a in ("mha", "alt1")}
    with open(os.path.join(HERE, "..", "tests", "fixtures", "dropout_trajectory.json"), "w") as f:
        json.dump(out, f)
    print(json.dumps(out)[:300])
