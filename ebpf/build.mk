# The XDP filter: kernel object, its libbpf skeleton, and the e2e test tool.
# Included by the top-level Makefile before flags are computed, so the rules
# below may use BUILD, but not variables defined later at parse time.

BPF_PKGS := libbpf

BPF_CLANG  ?= clang
BPFTOOL    ?= bpftool
# UAPI headers only (no vmlinux.h): the multiarch dir provides <asm/...>.
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -Wall -Werror -Iebpf \
              -idirafter /usr/include/$(shell gcc -dumpmachine)

BPF_OBJ   := $(BUILD)/ebpf/postern_filter.bpf.o
BPF_SKEL  := $(BUILD)/ebpf/postern_filter.skel.h
FILTERCTL := $(BUILD)/filterctl

# First rule of the Makefile, so "all" stays the default goal; the top-level
# Makefile adds the daemon and posternctl to it.
all: $(BPF_OBJ) $(BPF_SKEL) $(FILTERCTL)

$(BPF_OBJ): ebpf/postern_filter.bpf.c ebpf/postern_filter.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(BPF_CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BPF_SKEL): $(BPF_OBJ)
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name postern_filter > $@

# The loader includes the generated skeleton (found through -I$(BUILD)).
# SAN_BUILD is assigned after this file is read; ?= gives the same value.
SAN_BUILD ?= $(BUILD)/san
$(BUILD)/daemon/filter_bpf.o $(SAN_BUILD)/daemon/filter_bpf.o: $(BPF_SKEL)

# filterctl: drives the filter API from the BATS suite (tests/e2e).
$(FILTERCTL): $(BUILD)/tests/e2e/tools/filterctl.o $(BUILD)/libpostern.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
