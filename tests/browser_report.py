#!/usr/bin/python3
"""The HTML report in a real browser (ctest label `browser`).

Makes a tiny compare (tiny preset, a few steps, probe on), then opens its
report.html in Debian's headless Chromium:
  1. without a click: every variant's heatmap has n_layers x n_heads cells (one
     per (layer, head)), no script error, and no head curves yet;
  2. with the page's fragment #click=<variant>/<layer>/<head>, which makes the
     page dispatch a click on that cell through the same handler a mouse uses:
     the head panel names that layer and head and holds its curves (terms,
     cosines, ranks) and spectrum for every variant;
  3. saves a screenshot of 2 (browser_report.png in the output folder).
Chromium is driven with --dump-dom and --screenshot (no DevTools protocol, no
pip). Standard library only. Exit 0 pass, 1 fail, 77 skip (no chromium: ctest
reports the test as skipped, not passed).

usage: browser_report.py TAPEGRAD_BIN SOURCE_DIR OUT_DIR
"""
import html.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


class Dom(html.parser.HTMLParser):
    """Elements as (tag, attrs, ancestor ids) and the text of #tg-errors."""

    def __init__(self):
        super().__init__()
        self.elements, self.stack, self.errors, self.root = [], [], "", {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.root = a
        ids = [e.get("id") for _, e in self.stack if e.get("id")]
        self.elements.append((tag, a, ids))
        if tag not in ("meta", "br", "input", "img", "link", "stop", "rect", "path", "circle", "line"):
            self.stack.append((tag, a))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if self.stack and self.stack[-1][1].get("id") == "tg-errors":
            self.errors += data


def chromium_binary():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def chromium(browser, profile, url, *extra):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile,
           "--virtual-time-budget=20000", "--hide-scrollbars", *extra, url]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
    if r.returncode != 0:
        print(r.stderr.decode(errors="replace")[-2000:])
    return r.returncode, r.stdout.decode(errors="replace")


def cells_by_run(dom):
    out = {}
    for tag, a, _ in dom.elements:
        if tag == "rect" and "cell" in a.get("class", "").split():
            out.setdefault(a.get("data-run"), set()).add((a.get("data-layer"), a.get("data-head")))
    return out


def head_curves(dom):
    """(run, layer, head, series) of each path.curve inside #head-detail."""
    return [(a.get("data-run"), a.get("data-layer"), a.get("data-head"), a.get("data-series"))
            for tag, a, ids in dom.elements
            if tag == "path" and "curve" in a.get("class", "").split() and "head-detail" in ids]


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    tapegrad, src, out = sys.argv[1:]
    browser = chromium_binary()
    if not browser:
        print("SKIP: no chromium on PATH (Debian's chromium; `make test` installs it, or set CHROMIUM)")
        return 77
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    run = os.path.join(out, "compare")
    args = [tapegrad, "compare", "--preset", "tiny", "--max-steps", "6", "--eval-freq", "2", "--eval-iter",
            "1", "--probe-every", "2", "--quiet", "--data", os.path.join(src, "data", "the-verdict.txt"),
            "--out", run]
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    text = r.stdout.decode(errors="replace")
    print(text[-1500:])
    check(r.returncode == 0, "tapegrad compare exits 0")
    page = os.path.join(run, "report.html")
    check(os.path.exists(page) and "wrote " + page in text, "compare wrote report.html and said so")
    if FAILS:
        return 1
    variants = sorted(d for d in os.listdir(run) if os.path.exists(os.path.join(run, d, "metrics.csv")))
    check(variants == ["alt1", "mha"], "the compare has mha and alt1, found %s" % variants)
    cfg = json.load(open(os.path.join(run, "mha", "summary.json")))["config"]
    L, H = cfg["n_layers"], cfg["n_heads"]
    url = "file://" + os.path.abspath(page)

    with tempfile.TemporaryDirectory() as profile:
        # 1. the page as opened: heatmaps, no errors, no head selected yet
        rc, dump = chromium(browser, profile, url + "#q=dm_cos&step=last", "--dump-dom")
        check(rc == 0 and dump, "chromium --dump-dom of the page")
        dom = Dom()
        dom.feed(dump)
        check(dom.root.get("data-tg-ready") == "1", "the page's script ran to the end (data-tg-ready=1)")
        check(dom.errors.strip() == "", "no script error (#tg-errors: %r)" % dom.errors.strip()[:300])
        cells = cells_by_run(dom)
        want = {(str(l), str(h)) for l in range(L) for h in range(H)}
        for v in variants:
            check(cells.get(v) == want, "%s heatmap: %d x %d cells, one per (layer, head); found %d"
                  % (v, L, H, len(cells.get(v, ()))))
        check(head_curves(dom) == [], "no head curves before a click")
        losses = [a.get("data-series") for tag, a, ids in dom.elements
                  if tag == "path" and "loss" in ids and a.get("data-series")]
        for s in ("batch_loss", "train_loss", "val_loss"):
            check(losses.count(s) == len(variants), "loss chart: a %s curve per variant" % s)

        # 2. click a head (the last layer, head 1 of alt1) through the page's fragment
        layer, head = L - 1, 1
        frag = "#q=stable_rank&step=last&click=alt1/%d/%d" % (layer, head)
        rc, dump = chromium(browser, profile, url + frag, "--dump-dom")
        dom = Dom()
        dom.feed(dump)
        check(dom.errors.strip() == "", "no script error after the click (#tg-errors: %r)" % dom.errors.strip()[:300])
        detail = [a for tag, a, _ in dom.elements if a.get("id") == "head-detail"]
        check(detail and detail[0].get("data-layer") == str(layer) and detail[0].get("data-head") == str(head),
              "the head panel shows layer %d head %d" % (layer, head))
        selected = [(a.get("data-run"), a.get("data-layer"), a.get("data-head")) for tag, a, _ in dom.elements
                    if tag == "rect" and "selected" in a.get("class", "").split()]
        check(sorted(selected) == sorted((v, str(layer), str(head)) for v in variants),
              "the clicked cell is marked in every variant's heatmap")
        curves = head_curves(dom)
        check(curves and all(c[1:3] == (str(layer), str(head)) for c in curves),
              "every head curve belongs to layer %d head %d (%d curves)" % (layer, head, len(curves)))
        series = lambda v: {c[3] for c in curves if c[0] == v}
        check({"term_q_norm", "term_k_norm", "term_x_norm", "dm_cos", "stable_rank", "effective_rank",
               "spectrum"} <= series("mha"), "mha: query/key/cross terms, cosine, ranks and spectrum")
        check({"term_s_norm", "dm_cos", "stable_rank", "effective_rank", "spectrum"} <= series("alt1"),
              "alt1: the dS^T term, cosine, ranks and spectrum")
        probed = len({int(r.split(",")[0]) for r in open(os.path.join(run, "mha", "dynamics.csv")).read().split()[1:]})
        check(sum(1 for c in curves if c[0] == "mha" and c[3] == "spectrum") == probed,
              "mha: one spectrum line per probed step (%d)" % probed)

        # 3. the screenshot of the clicked page
        shot = os.path.join(out, "browser_report.png")
        rc, _ = chromium(browser, profile, url + frag, "--screenshot=" + shot, "--window-size=1400,1900")
        ok = os.path.exists(shot) and open(shot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        check(rc == 0 and ok, "screenshot saved: " + shot)

    print("%d check(s) failed" % len(FAILS) if FAILS else "all checks passed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
