#!/usr/bin/env python3
"""Every relative link and every repository path named in README.md, DEVELOPERS.md
and docs/**/*.md exists.

A link is [text](target) with a target that is not a URL or an anchor; it is
resolved against the page's folder. A path is a backticked word that starts with
one of the repository's top-level folders (core/, nn/, ..., docs/) and is
resolved against the repository root. Paths that runs or builds make (runs/,
build/, data/corpus/) are not checked; nor are globs or placeholders.
Exit 0 when all exist, 1 with one line per missing path otherwise.
"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP = ("core", "nn", "optim", "models", "train", "tests", "tools", "bench", "examples", "docs", "data", "cmake")
MADE = ("data/corpus",)  # made by `make data`, never committed
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
# A bare path in prose: a top-level folder, then a file name with an extension.
BARE = re.compile(r"(?<![\w/.-])((?:" + "|".join(TOP) + r")/[\w./-]*\w\.(?:h|cpp|py|md|sh|txt|json|csv|png|cmake|html|in))\b")


def pages():
    yield os.path.join(ROOT, "README.md")
    yield os.path.join(ROOT, "DEVELOPERS.md")
    for d, _, files in os.walk(os.path.join(ROOT, "docs")):
        for f in sorted(files):
            if f.endswith(".md"):
                yield os.path.join(d, f)


def main():
    missing = []
    checked = 0
    for page in pages():
        rel = os.path.relpath(page, ROOT)
        in_fence = False
        for n, line in enumerate(open(page, encoding="utf-8"), 1):
            if line.lstrip().startswith("```"):
                in_fence = not in_fence
                continue
            for m in LINK.finditer(line):
                target = m.group(1).split("#")[0]
                if not target or re.match(r"^[a-z]+:", target):
                    continue
                checked += 1
                if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(page), target))):
                    missing.append(f"{rel}:{n}: link '{m.group(1)}' names no file")
            if in_fence:
                continue
            words = dict.fromkeys([m.group(1) for m in CODE.finditer(line)] + [m.group(1) for m in BARE.finditer(line)])
            for word in words:
                word = word.rstrip(".,:;)")
                word = re.sub(r":\d+(-\d+)?$", "", word)  # file.cpp:120 -> file.cpp
                if not word.startswith(tuple(t + "/" for t in TOP)) or word.startswith(MADE):
                    continue
                if any(c in word for c in "*<>{}[]|$") or "..." in word:
                    continue
                checked += 1
                if not os.path.exists(os.path.join(ROOT, word)):
                    missing.append(f"{rel}:{n}: path '{word}' does not exist")
    for m in missing:
        print(m)
    print(f"{checked} links and paths checked, {len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
