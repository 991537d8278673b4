# Postern top-level Makefile: all rules live here, per-directory fragments
# only list sources (daemon/build.mk, webadmin/build.mk, ebpf/build.mk).
.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all deps run test unit e2e check fuzz bench deb clean

V ?= 0
ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' $(1) $(2)
endif

BUILD   ?= build
PKGS    := libevent libevent_pthreads libevent_openssl openssl inih sqlite3 libcrypt libcares
include daemon/build.mk
-include ebpf/build.mk
PKGS    += $(BPF_PKGS)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CC      ?= cc
WARN    := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
           -Wmissing-declarations -Wshadow -Wpointer-arith -Wcast-qual \
           -Wsign-compare -Wformat=2
HARDEN  := -fstack-protector-strong -fstack-clash-protection -fcf-protection \
           -D_FORTIFY_SOURCE=2 -fPIE
CFLAGS  ?= -g -O2
CFLAGS  += -std=gnu11 -D_GNU_SOURCE $(WARN) $(HARDEN) -Idaemon -Iwebadmin -Iebpf -I$(BUILD) \
           $(PKG_CFLAGS) -MMD -MP
LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS  += $(PKG_LIBS) -lpthread


# Sanitizer build of the library and unit tests (make test uses it).
SAN_BUILD := $(BUILD)/san
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_OBJS     := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
SAN_LIB_OBJS := $(patsubst %.c,$(SAN_BUILD)/%.o,$(LIB_SRCS))
UNIT_SRCS    := $(wildcard tests/unit/test_*.c)
UNIT_BINS    := $(patsubst tests/unit/%.c,$(SAN_BUILD)/unit/%,$(UNIT_SRCS))

all: $(BUILD)/posternd $(BUILD)/posternctl

$(BUILD)/libpostern.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(SAN_BUILD)/libpostern.a: $(SAN_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(SAN_BUILD)/%.o: %.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/posternd: $(BUILD)/daemon/main.o $(BUILD)/libpostern.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/posternctl: $(BUILD)/daemon/posternctl.o $(BUILD)/libpostern.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(SAN_BUILD)/unit/%: $(SAN_BUILD)/tests/unit/%.o $(SAN_BUILD)/libpostern.a
	$(call msg,LD,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

# The two commands README.md promises.
deps:
	@tests/tools/install-deps

# deps runs first and the build is a sub-make, so that pkg-config sees the
# libraries that deps has just installed on a fresh machine.
run: deps
	@$(MAKE) --no-print-directory all
	@tests/tools/dev-run

unit: $(UNIT_BINS)
	@tests/tools/run-unit $(UNIT_BINS)

e2e: all
	@tests/tools/run-e2e

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@tests/tools/run-all $(UNIT_BINS)

FUZZ_TIME ?= 30
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	@tests/tools/run-fuzz $(FUZZ_TIME) $(FUZZ_SRCS)

check: all $(UNIT_BINS)
	@tests/tools/run-check $(UNIT_BINS)

bench: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/run

# The connection filter under a SYN flood (root; network namespaces).
.PHONY: bench-filter
bench-filter: deps
	@$(MAKE) --no-print-directory all
	@tests/bench/filter/run

deb:
	@packaging/build-deb

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
