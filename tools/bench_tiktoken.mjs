// npm tiktoken's side of tapegrad_bench's tokenizer table: for each FILE:MAX
// argument, the MB/s of encode_ordinary (gpt2) on the file's first MAX bytes,
// decoded with U+FFFD replacement as tapegrad does; best of --reps, after one
// warm-up. One number per line. Run by `make bench` (needs `make tiktoken`).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { get_encoding } = require("tiktoken");

const args = process.argv.slice(2);
let reps = 3;
if (args[0] === "--reps") { reps = Number(args[1]); args.splice(0, 2); }
const enc = get_encoding("gpt2");
const dec = new TextDecoder("utf-8", { fatal: false });
for (const a of args) {
  const at = a.lastIndexOf(":");
  const bytes = readFileSync(a.slice(0, at)).subarray(0, Number(a.slice(at + 1)));
  const text = dec.decode(bytes);
  enc.encode_ordinary(text);
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    enc.encode_ordinary(text);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  console.log((bytes.length / 1e6 / best).toFixed(3));
}
enc.free();
