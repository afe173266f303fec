// Write tests/fixtures/tokenizer_adversarial.json: tiktoken's `gpt2` ids for
// inputs that once made tapegrad's tokenizer super-linear (random bytes, one
// long pre-token, long runs). The inputs are not stored: tests/test_tokenizer.cpp
// rebuilds the same bytes (adversarial_input there mirrors makeInput here), and
// the fixture keeps each case's id count, an FNV-1a-32 hash over the ids (each as
// 4 little-endian bytes), and the first and last 32 ids.
// Sizes stay small because tiktoken merges one long pre-token in O(n^2)
// (16K bytes of "a": ~2 s here); the throughput bench runs 1 MB inputs.
// Run: cd tools && npm install && node make_tokenizer_adversarial_fixture.mjs
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { get_encoding } = require("tiktoken");

const here = new URL(".", import.meta.url).pathname;
const verdict = readFileSync(here + "../data/the-verdict.txt");

// x <- 1664525 x + 1013904223 (mod 2^32); each step gives the top byte.
function lcgBytes(n, seed) {
  const out = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
const keep = (pred, n) => Buffer.from(Array.from(verdict).filter(pred).slice(0, n));
const isLetter = (b) => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
const isSpace = (b) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

function makeInput(name) {
  switch (name) {
    case "random_bytes": return lcgBytes(1 << 18, 1);
    case "one_char_run": return Buffer.from("a".repeat(1 << 14));
    case "space_run": return Buffer.from(" ".repeat(1 << 14) + "x");
    case "no_space_line": return keep((b) => !isSpace(b), 1 << 14);
    case "letters_only": return keep(isLetter, 1 << 14);
  }
  throw new Error(name);
}

function fnv1a32(ids) {
  let h = 0x811c9dc5;
  for (const id of ids)
    for (let k = 0; k < 4; k++) h = Math.imul(h ^ ((id >>> (8 * k)) & 0xff), 0x01000193) >>> 0;
  return h >>> 0;
}

const enc = get_encoding("gpt2");
const dec = new TextDecoder("utf-8", { fatal: false });
const cases = {};
for (const name of ["random_bytes", "one_char_run", "space_run", "no_space_line", "letters_only"]) {
  const bytes = makeInput(name);
  const ids = Array.from(enc.encode_ordinary(dec.decode(bytes)));
  cases[name] = { bytes: bytes.length, count: ids.length, fnv1a32: fnv1a32(ids), head: ids.slice(0, 32), tail: ids.slice(-32) };
  console.log(`${name}: ${bytes.length} bytes -> ${ids.length} ids`);
}
writeFileSync(here + "../tests/fixtures/tokenizer_adversarial.json", JSON.stringify(cases, null, 1) + "\n");
enc.free();
