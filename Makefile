# fh-bpf build.  `make` builds build/fh-bpf; `make test` runs every test
# (root needed for the end-to-end tier); `make demo` shows a crash traced.
# V=1 shows the commands.

ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
BPF_ARCH := x86
else
$(error fh-bpf supports x86_64 only (this is $(ARCH)))
endif

PREFIX ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

OUT := build
CLANG ?= clang
BPFTOOL ?= bpftool
CXX ?= g++
CC ?= gcc
PKG_CONFIG ?= pkg-config

LIBS_PC := libbpf libdw libelf
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++20 -Wall -Wextra -Wno-missing-field-initializers -MMD -MP \
	    -Iinclude -Iuserspace -I$(OUT) -DFH_VERSION='"$(VERSION)"' \
	    $(shell $(PKG_CONFIG) --cflags $(LIBS_PC))
LDLIBS := $(shell $(PKG_CONFIG) --libs $(LIBS_PC)) -lz -pthread

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -Wall \
	      -Ibpf/vmlinux/$(BPF_ARCH) -Iinclude

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all clean test test-unit test-e2e demo install bench targets

all: $(OUT)/fh-bpf

# --- BPF: one pipeline, skeletons generated, never committed ------------------
# fh: the capture programs; keepalive: the optional BPF LSM program.
BPF_DEPS := bpf/control.bpf.h bpf/scope.bpf.h bpf/python.bpf.h bpf/sender.bpf.h \
	    bpf/python_sys.bpf.h bpf/records.bpf.h bpf/mappings.bpf.h bpf/live.bpf.h bpf/signal.bpf.h \
	    include/fh/records.h include/fh/python.h include/fh/counters.h include/fh/live.h \
	    bpf/vmlinux/$(BPF_ARCH)/vmlinux.h

$(OUT)/%.tmp.bpf.o: bpf/%.bpf.c $(BPF_DEPS) | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/%.bpf.o: $(OUT)/%.tmp.bpf.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# --- userspace ---------------------------------------------------------------
# One folder per stage of the pipeline (userspace/README.md); app/main.cpp
# is the program, everything else is shared with the tests.
CORE_SRCS := $(filter-out userspace/app/main.cpp,$(wildcard userspace/*/*.cpp))
CORE_OBJS := $(patsubst userspace/%.cpp,$(OUT)/obj/%.o,$(CORE_SRCS))

$(OUT)/obj/capture/capture.o $(OUT)/obj/capture/live_dump.o: $(OUT)/fh.skel.h
$(OUT)/obj/capture/keepalive.o: $(OUT)/keepalive.skel.h
$(OUT)/tests/unit/capture/test_core_btf.o: $(OUT)/fh.skel.h

$(OUT)/obj/%.o: userspace/%.cpp | $(OUT)/obj
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CXX) $(CXXFLAGS) -c $< -o $@

# The C++ runtime linked in: resolving libstdc++'s symbols at every start
# is half a millisecond, a quarter of a one-shot Python --dump.
FH_LDFLAGS := -static-libstdc++ -static-libgcc

$(OUT)/fh-bpf: $(OUT)/obj/app/main.o $(CORE_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CXX) $(LDFLAGS) $(FH_LDFLAGS) $^ $(LDLIBS) -o $@

# --- tests -------------------------------------------------------------------
# Targets: -O2 without frame pointers, with debug info, as the issue demands.
TARGET_CFLAGS := -O2 -g -fomit-frame-pointer -pthread
TARGETS := crash hostile_park inline_chain overflow instant_crash
TARGET_BINS := $(patsubst %,$(OUT)/targets/%,$(TARGETS)) $(OUT)/targets/libfhplugin.so \
	       $(OUT)/targets/cxx_crash $(OUT)/targets/cxx_inline \
	       $(OUT)/targets/libpython3.5m.so $(OUT)/targets/libpython3.13t.so \
	       $(OUT)/targets/hostile_py $(OUT)/targets/libpython3.11.so

# A fake libpython 3.11 for the tests of the agent's bounds (hostile_py maps it).
$(OUT)/targets/libpython3.11.so: tests/targets/hostile_py_runtime.c | $(OUT)/targets
	$(call msg,CC,$@)
	$(Q)$(CC) -O2 -fPIC -shared $< -o $@

$(OUT)/targets/libpython3.5m.so $(OUT)/targets/libpython3.13t.so: tests/targets/fake_runtime.c | $(OUT)/targets
	$(call msg,CC,$@)
	$(Q)$(CC) -O2 -fPIC -shared $< -o $@

$(OUT)/targets/cxx_crash $(OUT)/targets/cxx_inline: $(OUT)/targets/%: tests/targets/%.cpp \
		tests/targets/parked.h | $(OUT)/targets
	$(call msg,CXX,$@)
	$(Q)$(CXX) $(TARGET_CFLAGS) $< -o $@

$(OUT)/targets/libfhplugin.so: tests/targets/plugin.c | $(OUT)/targets
	$(call msg,CC,$@)
	$(Q)$(CC) $(TARGET_CFLAGS) -fPIC -shared $< -o $@

$(OUT)/targets/%: tests/targets/%.c tests/targets/parked.h | $(OUT)/targets
	$(call msg,CC,$@)
	$(Q)$(CC) $(TARGET_CFLAGS) $< -o $@

$(OUT)/tests/%.o: tests/%.cpp | $(OUT)/tests/unit $(OUT)/tests/e2e
	$(call msg,CXX,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CXX) $(CXXFLAGS) -Itests -c $< -o $@

UNIT_OBJS := $(patsubst tests/%.cpp,$(OUT)/tests/%.o,$(wildcard tests/unit/*/*.cpp))
E2E_OBJS := $(patsubst tests/%.cpp,$(OUT)/tests/%.o,$(wildcard tests/e2e/*.cpp))

$(OUT)/tests/unit-tests: $(UNIT_OBJS) $(OUT)/tests/catch_main.o $(OUT)/tests/support.o \
			  $(OUT)/tests/python_interpreters.o $(CORE_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/tests/e2e-tests: $(E2E_OBJS) $(OUT)/tests/catch_main.o $(OUT)/tests/support.o \
			 $(OUT)/tests/python_interpreters.o $(CORE_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

targets: $(TARGET_BINS)

test: $(OUT)/fh-bpf $(OUT)/tests/unit-tests $(OUT)/tests/e2e-tests $(TARGET_BINS)
	$(Q)scripts/run-tests.sh $(OUT)

test-unit: $(OUT)/tests/unit-tests $(TARGET_BINS)
	$(Q)scripts/run-tests.sh --unit-only $(OUT)

# --- demo, install, bench ----------------------------------------------------
demo: $(OUT)/fh-bpf $(OUT)/targets/crash
	$(Q)scripts/demo.sh $(OUT)

# Every figure (python3 bench/fhbench list); BENCH_ARGS=--quick for a short run.
bench: $(OUT)/fh-bpf $(TARGET_BINS)
	$(Q)python3 bench/fhbench run --build $(OUT) $(BENCH_ARGS)

SYSTEMD_UNIT_DIR ?= /etc/systemd/system

install: $(OUT)/fh-bpf
	install -D -m 0755 $(OUT)/fh-bpf $(DESTDIR)$(PREFIX)/bin/fh-bpf
	install -d -m 0755 $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	sed 's|@BINDIR@|$(PREFIX)/bin|g' scripts/fh-bpf.service > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/fh-bpf.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/fh-bpf.service

$(OUT) $(OUT)/obj $(OUT)/targets $(OUT)/tests/unit $(OUT)/tests/e2e:
	$(Q)mkdir -p $@

clean:
	rm -rf $(OUT)

-include $(wildcard $(OUT)/obj/*/*.d $(OUT)/tests/*.d $(OUT)/tests/*/*.d $(OUT)/tests/*/*/*.d)

# --- fuzzing -----------------------------------------------------------------
# libFuzzer harnesses (tests/fuzz/fuzz_*.cpp) for every parser of untrusted
# bytes, built with clang++ and ASan/UBSan (UBSan findings abort) into
# $(OUT)/fuzz.  `make fuzz-smoke` runs each briefly over its seed corpus (part
# of `make test`); `make fuzz FUZZ_SECONDS=600` runs each longer.
# `make fuzz-seeds` regenerates the seed corpora in tests/fuzz/corpus.
.PHONY: fuzz fuzz-build fuzz-smoke fuzz-seeds
FUZZ_CXX ?= clang++
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 15
FUZZ_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CXXFLAGS := -std=c++20 -g -O1 -fno-omit-frame-pointer -MMD -MP $(FUZZ_SANITIZE) \
		 -Iinclude -Iuserspace -Itests/fuzz -DFH_VERSION='"$(VERSION)"' \
		 $(shell $(PKG_CONFIG) --cflags $(LIBS_PC))
FUZZ_SRCS := util/error util/fd util/diag util/printable util/signals util/strings \
	     cli/options cli/option_table cli/usage cli/values app/flood \
	     output/json report/incident report/text process/process_meta python/live_walk \
	     process/elf_file process/kernel_info process/mappings process/perf_records process/proc \
	     python/linetable python/py_report python/py_traceback python/py_walk python/python python/offsets \
	     capture/records symbolize/native output/syslog output/syslog_json symbolize/unwinder \
	     symbolize/symbols symbolize/debug_cache
FUZZ_HARNESSES := $(patsubst tests/fuzz/%.cpp,$(OUT)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.cpp))

$(OUT)/fuzz/obj/%.o: userspace/%.cpp | $(OUT)/fuzz/obj
	$(call msg,FUZZ-CXX,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(OUT)/fuzz/libfh-fuzz.a: $(patsubst %,$(OUT)/fuzz/obj/%.o,$(FUZZ_SRCS))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.cpp $(OUT)/fuzz/libfh-fuzz.a
	$(call msg,FUZZ-LD,$@)
	$(Q)$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer $< $(OUT)/fuzz/libfh-fuzz.a $(LDLIBS) -o $@

$(OUT)/fuzz/make-seeds: tests/fuzz/make_seeds.cpp $(OUT)/fuzz/libfh-fuzz.a
	$(call msg,FUZZ-LD,$@)
	$(Q)$(FUZZ_CXX) $(FUZZ_CXXFLAGS) $< $(OUT)/fuzz/libfh-fuzz.a $(LDLIBS) -o $@

fuzz-build: $(FUZZ_HARNESSES)

# `make test` runs the fuzz smoke too (scripts/run-tests.sh).
test: $(FUZZ_HARNESSES)

fuzz-seeds: $(OUT)/fuzz/make-seeds
	$(Q)$(OUT)/fuzz/make-seeds tests/fuzz/corpus

fuzz-smoke: $(FUZZ_HARNESSES)
	$(Q)tests/fuzz/run.sh --seconds $(FUZZ_SMOKE_SECONDS) $(OUT)

fuzz: $(FUZZ_HARNESSES)
	$(Q)tests/fuzz/run.sh --seconds $(FUZZ_SECONDS) --keep $(OUT)

$(OUT)/fuzz/obj:
	$(Q)mkdir -p $@

-include $(wildcard $(OUT)/fuzz/obj/*/*.d $(OUT)/fuzz/*.d)
