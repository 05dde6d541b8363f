# gpt.c -- a GPT trained from scratch in plain C.
#
#   make                 build ./gpt (-O3, -march=native, OpenMP)
#   make train           build, train on data/tinyshakespeare.txt with laptop defaults, sample
#   make speedrun        the best model in BUDGET (10m) of wall clock into out-speedrun/, its
#                        eval and a sample (scripts/speedrun.sh; SEEDS="1 2 3": one run per seed)
#   make speedrun-plot   the README's picture: speedrun.svg (the steps: scripts/speedrun.sh)
#   make test            build and run the whole Check suite (and the command-line tests)
#   make sanitize        the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz            each libFuzzer target for FUZZ_SECONDS (600); make fuzz-smoke: 20 s
#   make valgrind        a train, a resume and a sample under valgrind memcheck
#   make test-mpi        data-parallel training on 2 MPI ranks (needs openmpi-bin libopenmpi-dev)
#
# Knobs: CC=clang, ARCH= (no -march=native; ARCH=-march=x86-64-v3 etc.), NO_OMP=1 (no
# OpenMP), OPT=-O2, EXTRA_CFLAGS=..., MPI=1 (build with mpicc for data-parallel training).

ARCH ?= -march=native
OPT ?= -O3
NO_OMP ?=
MPI ?=
SAN ?=

ifeq ($(origin CC),default)
CC := cc
endif
ifneq ($(MPI),)
CC := mpicc
MPI_FLAGS := -DGPT_MPI
endif

ifeq ($(NO_OMP),)
OMP_FLAGS := -fopenmp
else
OMP_FLAGS := -Wno-unknown-pragmas
endif

ifneq ($(SAN),)
OPT := -O1
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif

# Every configuration builds into its own directory, so switching flags never links
# objects compiled with other flags.
BUILD := build/$(shell printf '%s' '$(CC) $(ARCH) $(OPT) $(NO_OMP) $(MPI) $(SAN) $(EXTRA_CFLAGS)' | cksum | cut -d' ' -f1)

# pkg-config is asked lazily (=, not :=) so that it runs after `deps` has installed it.
PKG_CFLAGS = $(shell pkg-config --cflags stb check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

CFLAGS = -std=c11 -D_GNU_SOURCE $(OPT) $(ARCH) -ffp-contract=fast -fno-math-errno -g -Wall -Wextra $(OMP_FLAGS) $(SAN_FLAGS) $(MPI_FLAGS) \
         -I. $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_ALL = $(OMP_FLAGS) $(SAN_FLAGS) $(LDFLAGS)
LDLIBS = -lm

MODULES := common model kernels tokenizer data checkpoint report train export cli
LIB_SRCS := $(filter-out cli/main.c, $(foreach d,$(MODULES),$(wildcard $(d)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/cli/main.o
TEST_SRCS := $(wildcard tests/*.c)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
TEST_BIN := $(BUILD)/test_runner
HEADERS := $(foreach d,$(MODULES) tests,$(wildcard $(d)/*.h))

.PHONY: all gpt deps train test sanitize clean
.DEFAULT_GOAL := all

all: gpt

# Installs libstb-dev, check and pkg-config when they are missing (see the script).
deps:
	@command -v pkg-config >/dev/null 2>&1 && pkg-config --exists stb check || sh scripts/setup-deps.sh

gpt: $(BUILD)/gpt
	@cp $< $@

$(BUILD)/gpt: $(MAIN_OBJ) $(LIB_OBJS)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(HEADERS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(TEST_BIN): $(TEST_OBJS) $(LIB_OBJS)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

# The Check runner forks per test; CK_DEFAULT_TIMEOUT is raised for slow sanitizer builds.
test: $(TEST_BIN) $(BUILD)/gpt $(BUILD)/ckpt_tool
	CK_DEFAULT_TIMEOUT=$(if $(SAN),600,120) $(TEST_BIN)
	GPT=$(BUILD)/gpt sh tests/cli_test.sh
	GPT=$(BUILD)/gpt CKPT_TOOL=$(BUILD)/ckpt_tool sh tests/robustness_test.sh
	GPT=$(BUILD)/gpt CKPT_TOOL=$(BUILD)/ckpt_tool sh tests/data_test.sh

sanitize:
	$(MAKE) --no-print-directory test SAN=1 ARCH='$(ARCH)'

# A test helper that looks inside checkpoints and makes ones gpt never writes (see the file).
$(BUILD)/ckpt_tool: $(BUILD)/tests/tools/ckpt_tool.o $(LIB_OBJS)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS)

# libFuzzer (clang): checkpoint loading, tokenizer loading, tokenizer encode/decode. Each
# target runs FUZZ_SECONDS from its committed seeds in tests/fuzz/corpus/<target>; the inputs
# it finds and any crash (crash-*, with the reproducing input) go to build/fuzz/, so the
# committed corpus never changes. Rerun a crash: build/fuzz/<target> build/fuzz/crashes/...
FUZZ_TARGETS := fuzz_checkpoint fuzz_tokenizer_load fuzz_tokenizer_roundtrip
FUZZ_SECONDS ?= 600
FUZZ_DIR := build/fuzz
.PHONY: fuzz fuzz-smoke fuzz-targets valgrind valgrind-run
fuzz:
	$(MAKE) --no-print-directory fuzz-targets CC=clang ARCH= NO_OMP=1 SAN=1 EXTRA_CFLAGS=-fsanitize=fuzzer-no-link
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/crashes/$$t; \
	    echo "fuzzing $$t for $(FUZZ_SECONDS) s (log: $(FUZZ_DIR)/$$t.log)"; \
	    $(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=60 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/crashes/$$t/ $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t \
	        2>$(FUZZ_DIR)/$$t.log || { tail -60 $(FUZZ_DIR)/$$t.log; exit 1; }; \
	    grep -E '^stat::number_of_executed_units|^Done' $(FUZZ_DIR)/$$t.log; \
	done

# The same, 20 s per target (CI).
fuzz-smoke:
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

fuzz-targets: $(FUZZ_TARGETS:%=$(BUILD)/%)
	@mkdir -p $(FUZZ_DIR)
	cp $^ $(FUZZ_DIR)/

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_OBJS) $(HEADERS) tests/fuzz/fuzz_check.h
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB_OBJS) $(LDLIBS)

# valgrind memcheck of a short train, a resume and a sample (and bpe, info, attention): 0 errors,
# 0 leaks. valgrind 3.19 does not know AVX-512, so this gpt is built without -march=native, at
# -O1 for clear traces. Suppressions (libgomp's own state only): tests/valgrind.supp.
valgrind:
	$(MAKE) --no-print-directory valgrind-run ARCH= OPT=-O1

valgrind-run: $(BUILD)/gpt
	GPT=$(BUILD)/gpt sh tests/valgrind_test.sh

# Data-parallel training: 2 MPI ranks on this machine follow one process (the default
# build) with --grad-accum 2, resume, and stop when a rank dies (tests/mpi_test.sh).
.PHONY: test-mpi test-mpi-run
test-mpi: $(BUILD)/gpt
	$(MAKE) --no-print-directory test-mpi-run MPI=1 SERIAL_GPT=$(abspath $(BUILD)/gpt)

test-mpi-run: $(BUILD)/gpt
	GPT=$(SERIAL_GPT) GPT_MPI_BIN=$(BUILD)/gpt sh tests/mpi_test.sh

# make train's recipe: gpt train's defaults (nanoGPT's CPU run) at the learning rate that
# trains this model best in the same steps (README, "Ten minutes"). scripts/speedrun.sh's
# baseline reads this line.
TRAIN_RECIPE = --lr 4e-3 --min-lr 4e-4
TRAIN_FLAGS ?=
train: gpt
	./gpt train --data data/tinyshakespeare.txt --out out $(TRAIN_RECIPE) $(TRAIN_FLAGS)
	./gpt sample out/best.bin --tokens 500

BUDGET ?= 10m
SEEDS ?=
.PHONY: speedrun speedrun-plot
speedrun: gpt
	BUDGET='$(BUDGET)' SEEDS='$(SEEDS)' sh scripts/speedrun.sh

speedrun-plot: gpt
	sh scripts/speedrun.sh plot

clean:
	rm -rf build gpt
