#!/usr/bin/python3
"""Write tests/fixtures/llmc/ shards the way llm.c's dev/data/data_common.py
(write_datafile) writes them: a numpy int32 header of 256 values (magic
20240520, version 1, token count), then the tokens as numpy uint16, in llm.c's
naming (<name>_train_NNNNNN.bin / <name>_val_NNNNNN.bin). The tokens are the
first 900 GPT-2 ids of the-verdict.txt from tests/fixtures/tokenizer.json
(tiktoken's), so tests/test_shards.cpp knows what to expect.
Run: /usr/bin/python3 tools/make_llmc_shard_fixture.py  (Debian's python3-numpy)
"""
import json
import os

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
out = os.path.join(root, "tests", "fixtures", "llmc")


def write_like_llmc(path, toks):
    header = np.zeros(256, dtype=np.int32)
    header[0] = 20240520
    header[1] = 1
    header[2] = len(toks)
    body = np.array(toks, dtype=np.uint16)
    assert (body == np.array(toks)).all()
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(body.tobytes())


ids = json.load(open(os.path.join(root, "tests", "fixtures", "tokenizer.json")))["verdict_ids"]
os.makedirs(out, exist_ok=True)
write_like_llmc(os.path.join(out, "verdict_train_000001.bin"), ids[:400])
write_like_llmc(os.path.join(out, "verdict_train_000002.bin"), ids[400:700])
write_like_llmc(os.path.join(out, "verdict_val_000000.bin"), ids[700:900])
print("wrote", sorted(os.listdir(out)))
