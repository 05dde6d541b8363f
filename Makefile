# gpt.c -- a GPT trained from scratch in plain C.
#
#   make                 build ./gpt (-O3, -march=native, OpenMP)
#   make train           build, train on data/tinyshakespeare.txt with laptop defaults, sample
#   make test            build and run the whole Check suite (and the command-line tests)
#   make sanitize        the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
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

CFLAGS = -std=c11 -D_GNU_SOURCE $(OPT) $(ARCH) -ffp-contract=fast -g -Wall -Wextra $(OMP_FLAGS) $(SAN_FLAGS) $(MPI_FLAGS) \
         -I. $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_ALL = $(OMP_FLAGS) $(SAN_FLAGS) $(LDFLAGS)
LDLIBS = -lm

LIB_SRCS := $(filter-out train/main.c, $(wildcard common/*.c model/*.c tokenizer/*.c data/*.c train/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/train/main.o
TEST_SRCS := $(wildcard tests/*.c)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
TEST_BIN := $(BUILD)/test_runner
HEADERS := $(wildcard common/*.h model/*.h tokenizer/*.h data/*.h train/*.h tests/*.h)

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
test: $(TEST_BIN) $(BUILD)/gpt
	CK_DEFAULT_TIMEOUT=$(if $(SAN),600,120) $(TEST_BIN)
	GPT=$(BUILD)/gpt sh tests/cli_test.sh

sanitize:
	$(MAKE) --no-print-directory test SAN=1 ARCH='$(ARCH)'

TRAIN_FLAGS ?=
train: gpt
	./gpt train --data data/tinyshakespeare.txt --out out $(TRAIN_FLAGS)
	./gpt sample out/best.bin --tokens 500

clean:
	rm -rf build gpt
