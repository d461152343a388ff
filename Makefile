# Dexter build. `make` builds every service into build/bin/; `make test` runs
# every test (C unit tests and services under ASan/UBSan, end-to-end tests);
# `make run` starts the whole system. See README.md.

CC       ?= gcc
PKGS     := libczmq libzmq msgpack libmicrohttpd hiredis jansson libsodium libcurl libcrypto libxml-2.0 zlib
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
               -Icommon $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS_EXTRA)
LIBS     := -Wl,--as-needed $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

# Variants: release (build/bin) and asan (build/asan/bin, ASan + UBSan).
# BUILDROOT lets several builds of one tree run side by side.
BUILDROOT ?= build
ifeq ($(VARIANT),asan)
  OUT     := $(BUILDROOT)/asan
  CFLAGS  := $(CFLAGS_BASE) -O1 -g -fno-omit-frame-pointer \
             -fsanitize=address,undefined -fno-sanitize-recover=all
  LDFLAGS := -fsanitize=address,undefined
else
  VARIANT := release
  OUT     := $(BUILDROOT)
  CFLAGS  := $(CFLAGS_BASE) -O2 -g
  LDFLAGS :=
endif
OBJ := $(BUILDROOT)/obj/$(VARIANT)

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(OBJ)/%.o)
LIBDEXTER  := $(OBJ)/libdexter.a

# A service is a directory under services/ with a main.c; its binary is
# dexter-<dir>. Directories without code yet are skipped. Everything of a
# service but main.c is its library, $(OBJ)/services/lib<dir>.a, which the
# binary and the service's unit tests link.
SERVICES := $(patsubst services/%/main.c,%,$(wildcard services/*/main.c))
BINS     := $(SERVICES:%=$(OUT)/bin/dexter-%)
svc_objs  = $(patsubst %.c,$(OBJ)/%.o,$(filter-out services/$(1)/main.c,$(wildcard services/$(1)/*.c)))
svc_lib   = $(if $(1),$(OBJ)/services/lib$(1).a)

# A unit test test_<prefix>_<what>.c links the library of the service whose
# files carry that prefix (test_dx_* test common/ alone), the harness, and
# tests/unit/harness_<prefix>.c where there is one (what the tests of one
# service share).
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(OUT)/tests/%)
TEST_SVC_api := api
TEST_SVC_sch := scheduler
TEST_SVC_aws := aws-worker
TEST_SVC_az  := azure-worker
TEST_SVC_vpn := vpn
test_svc  = $(TEST_SVC_$(word 2,$(subst _, ,$(1))))
HARNESS  := $(OBJ)/tests/unit/harness.o
test_harness = $(HARNESS) $(patsubst %.c,$(OBJ)/%.o,$(wildcard tests/unit/harness_$(word 2,$(subst _, ,$(1))).c))

PY := /usr/bin/python3

.PHONY: all services unit deps run test test-unit test-e2e lint-openapi asan fuzz fuzz-run bench clean
all: services

services: $(BINS)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The api answers its OpenAPI document (GET /api/v1.0/openapi.json):
# docs/openapi.yaml as a C string literal, written at build time.
OPENAPI_INC := $(OBJ)/gen/api_openapi.inc
$(OPENAPI_INC): docs/openapi.yaml scripts/openapi-embed.py
	@mkdir -p $(dir $@)
	$(PY) scripts/openapi-embed.py $< $@
$(OBJ)/services/api/api_openapi.o: $(OPENAPI_INC)
$(OBJ)/services/api/api_openapi.o: CFLAGS += -I$(OBJ)/gen

$(LIBDEXTER): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# Objects are intermediate files of the chained rules below; keep them.
.SECONDARY:
.SECONDEXPANSION:
$(OBJ)/services/lib%.a: $$(call svc_objs,$$*)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(OUT)/bin/dexter-%: $(OBJ)/services/$$*/main.o $$(call svc_lib,$$*) $(LIBDEXTER)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(OUT)/tests/%: $(OBJ)/tests/unit/%.o $$(call test_harness,$$*) $$(call svc_lib,$$(call test_svc,$$*)) $(LIBDEXTER)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

unit: $(UNIT_BIN)

deps:
	@scripts/install-deps.sh

# Every setting comes from the environment (README.md), or the command line:
# make run DEXTER_DCOS_INSTALLER_URL=https://mirror.example.com/dcos_generate_config.sh
run: deps
	@$(MAKE) --no-print-directory services
	@[ -n "$${DEXTER_DCOS_INSTALLER_URL:-}" ] || echo "dexter: DEXTER_DCOS_INSTALLER_URL" \
	    "is not set: a deploy of a dcos cluster is refused (docs/provision.md)" >&2
	@exec scripts/run.sh

# Everything under test: unit tests and services built with ASan/UBSan.
asan:
	@$(MAKE) --no-print-directory VARIANT=asan services unit

# Both variants are built and their unit tests run: the release build (-O2)
# is what users run, and gcc warns at -O2 of what -O1 does not see.
# The builds use every core (JOBS); the unit tests of the two variants run
# side by side (scripts/run-unit-tests.sh).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test: deps
	@$(MAKE) --no-print-directory lint-openapi
	@$(MAKE) --no-print-directory -j$(JOBS) services unit
	@$(MAKE) --no-print-directory -j$(JOBS) asan
	@$(MAKE) --no-print-directory test-unit test-e2e

test-unit:
	@scripts/run-unit-tests.sh $(BUILDROOT)/tests $(BUILDROOT)/asan/tests

# docs/openapi.yaml passes @redocly/cli's lint, every rule of redocly.yaml
# an error; scripts/install-deps.sh installs the linter into .tools/.
lint-openapi: deps
	.tools/node_modules/.bin/redocly lint --config redocly.yaml docs/openapi.yaml

test-e2e:
	DEXTER_BIN_DIR=$(abspath $(BUILDROOT))/asan/bin $(PY) -m pytest -q -p no:cacheprovider tests/e2e tests/fakes

# libFuzzer targets (clang), one per reader of outside bytes: the message
# decoder and the api's body parsers, router and dx_spec's validators.
# tests/fuzz/fuzz_T.c is target T; each compiles the sources it needs
# itself, for libFuzzer's instrumentation. `make fuzz-run` runs each
# target of FUZZ_TARGETS in turn for FUZZ_SECONDS (default 600) on its
# seeds in tests/fuzz/T/ (docs/FUZZING.md).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= msg body route spec
FUZZ_OUT     := $(BUILDROOT)/fuzz
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -Icommon -Iservices/api \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_SRC_msg   := common/dx_msg.c common/dx_util.c
FUZZ_SRC_user  := $(FUZZ_SRC_msg) common/dx_spec.c common/dx_catalog.c common/dx_sshkey.c \
                  services/api/api_body.c tests/fuzz/fz_check.c
FUZZ_SRC_body  := $(FUZZ_SRC_user) services/api/api_route.c services/api/api_handler.c \
                  common/dx_log.c
FUZZ_SRC_route := $(FUZZ_SRC_body)
FUZZ_SRC_spec  := $(FUZZ_SRC_user)
fuzz: $(FUZZ_TARGETS:%=$(FUZZ_OUT)/fuzz_%)

$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRC_$$*) $(wildcard common/*.h common/*.def services/api/*.h tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $< $(FUZZ_SRC_$*) -o $@ $(LIBS)

# New inputs go to $(FUZZ_OUT)/corpus-T (not in git); the seeds are only read.
fuzz-run: fuzz
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_OUT)/corpus-$$t && \
	  echo "fuzz_$$t for $(FUZZ_SECONDS) s" && \
	  $(FUZZ_OUT)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_OUT)/$$t- $(FUZZ_OUT)/corpus-$$t tests/fuzz/$$t || exit 1; \
	done

bench: services
	DEXTER_BIN_DIR=$(abspath $(OUT))/bin bench/api/run.sh
	bench/getpid/run.sh

clean:
	rm -rf build

-include $(shell find $(BUILDROOT)/obj -name '*.d' 2>/dev/null)
