// Write tests/fixtures/tokenizer.json: tiktoken's `gpt2` encoding of varied
// strings (as raw input bytes, base64) and of data/the-verdict.txt.
// Invalid UTF-8 input is first decoded with U+FFFD replacement (TextDecoder,
// the WHATWG "maximal subpart" rule, as Python's errors="replace"), which is
// what tapegrad's tokenizer does with invalid bytes.
// Run: cd tools && npm install && node make_tokenizer_fixture.mjs
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { get_encoding } = require("tiktoken");

const here = new URL(".", import.meta.url).pathname;
const enc = get_encoding("gpt2");
const utf8 = (s) => Buffer.from(s, "utf8");
const inputs = [
  "Hello, world!",
  "I'm sure it's what you'd've done; they'll say we're LATE'S",
  "Numbers: 3.14159, 1,000,000 and 2026-11-27 or 0x1F",
  "runs   of    spaces  \n\n\n  and\n \n newlines\r\n",
  "\ttabs\t\tand\tmixed \t whitespace \u00a0nbsp\u2003em",
  "Accented: café, naïve, résumé, Ångström, Zürich",
  "CJK: 日本語のテキスト、中文字符，한국어",
  "Emoji: 👍🏽 🧑‍🚀 🇫🇷 ❤️",
  "<|endoftext|> as text and <|endoftext|>again",
  "",
  " ",
  "   leading and trailing   ",
  "Every effort moves you",
  "ALL CAPS 'TIS 'S OK? yes!!! ... ---",
  "mixed123abc 456def    789",
  "\u0085NEL\u2028LS\u2029PS\u200bZWSP",
];
const cases = inputs.map((s) => ({ bytes: utf8(s) }));
// Invalid UTF-8: lone continuation, truncated sequences, overlong, surrogate, 0xFF.
const invalid = [
  [0x61, 0x80, 0x62],
  [0xe6, 0x97, 0x20, 0x78],
  [0xc0, 0xaf, 0x41],
  [0xed, 0xa0, 0x80, 0x42],
  [0xff, 0xfe, 0x43, 0xf0, 0x9f, 0x98],
];
for (const b of invalid) cases.push({ bytes: Buffer.from(b) });

const dec = new TextDecoder("utf-8", { fatal: false });
const out = cases.map((c) => {
  const text = dec.decode(c.bytes);
  return {
    bytes_b64: c.bytes.toString("base64"),
    ordinary: Array.from(enc.encode_ordinary(text)),
    special: Array.from(enc.encode(text, "all")),
  };
});
const verdict = readFileSync(here + "../data/the-verdict.txt", "utf8");
// The book's split: the first int(0.9 * len) characters train, the rest validate.
const chars = Array.from(verdict);
const cut = Math.floor(0.9 * chars.length);
const fx = {
  cases: out,
  verdict_ids: Array.from(enc.encode_ordinary(verdict)),
  verdict_train_ids: Array.from(enc.encode(chars.slice(0, cut).join(""), "all")),
  verdict_val_ids: Array.from(enc.encode(chars.slice(cut).join(""), "all")),
};
writeFileSync(here + "../tests/fixtures/tokenizer.json", JSON.stringify(fx));
console.log(`wrote ${out.length} cases; the-verdict.txt: ${fx.verdict_ids.length} tokens`);
enc.free();
