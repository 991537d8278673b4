#!/usr/bin/env bats
# The connection filter end to end, on real traffic between two network
# namespaces joined by a veth pair (TEST-NET addresses only). The server side
# runs build/filterctl "serve" (the filter API as posternd uses it: open,
# admit at accept, events, tick, close) twice: in XDP mode on port 2525 and
# in user-space mode on port 2526. "filterctl ban|unban|allow|list|status"
# plays posternctl. Clients are tests/e2e/tools/conn_burst.py: every load
# is bounded in count (<= 20 connections) and time (0.8 s, under timeout).
#
# Needs root; skips with the reason when the machine cannot load BPF.

RATE=6/min  # no token comes back within a test: counts are exact
BURST=5

# @param $1 name of a namespace; the rest: a command run inside it with the
#   host's mount namespace, so that the bpffs pins stay visible (ip netns exec
#   remounts /sys and would hide them).
__in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# filterctl against the XDP instance (its pins and ban file).
# @param $@ filterctl command and arguments
_xctl() {
	__in_ns "$NS_SRV" "$FILTERCTL" --pin-root "$PIN" \
		--ban-file "$STATE/xdp-bans" --iface "$IF_SRV" "$@"
}

# filterctl against the user-space instance (ban file only, no pins).
# @param $@ filterctl command and arguments
_uctl() {
	__in_ns "$NS_SRV" "$FILTERCTL" --pin-root "$PIN-none" \
		--ban-file "$STATE/user-bans" "$@"
}

# Starts a filterctl server in the server namespace and waits until ready.
# @param $1 instance name (xdp|user), $2 port, $@ extra filterctl options
_start_server() {
	local name=$1 port=$2 i
	shift 2
	# exec: $! is then filterctl's own PID. 3>&-: bats must not wait for
	# the server to close its output.
	(exec nsenter --net="/run/netns/$NS_SRV" "$FILTERCTL" --rate "$RATE" \
		--burst "$BURST" --ports 2525 "$@" serve "$port" 300 \
		>>"$STATE/$name.log" 2>&1 3>&-) &
	echo $! >"$STATE/$name.pid"
	for i in $(seq 1 100); do
		if [ "$(grep -c '^ready' "$STATE/$name.log")" -gt \
			"$(cat "$STATE/$name.starts" 2>/dev/null || echo 0)" ]; then
			grep -c '^ready' "$STATE/$name.log" >"$STATE/$name.starts"
			return 0
		fi
		kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null || break
		sleep 0.1
	done
	echo "server $name did not start:" >&2
	cat "$STATE/$name.log" >&2
	return 1
}

# Stops a server started by _start_server (by its PID) and waits for it.
# @param $1 instance name
_stop_server() {
	local pid i
	pid=$(cat "$STATE/$1.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	rm -f "$STATE/$1.pid"
}

_start_xdp() {
	_start_server xdp 2525 --pin-root "$PIN" --ban-file "$STATE/xdp-bans" \
		--mode xdp --iface "$IF_SRV" "$@"
}

_start_user() {
	_start_server user 2526 --pin-root "$PIN-none" \
		--ban-file "$STATE/user-bans" --mode userspace \
		--allow 198.51.100.60 "$@"
}

# Opens connections from the client namespace.
# @param $1 source address, $2 destination, $3 port, $4 count
_burst() {
	ip netns exec "$NS_CLI" timeout 10 python3 "$CONN" --src "$1" \
		--dst "$2" --port "$3" --count "${4:-1}" --timeout 0.8
}

# Value of key=N in $output. @param $1 key
_field() {
	echo "$output" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1
}

# Value of "key: N" in $output. @param $1 key
_stat() {
	echo "$output" | sed -n "s/^$1: //p" | head -n1
}

# Fails with the servers' logs. @param $@ message
_fail() {
	echo "$*"
	echo "--- output: $output"
	echo "--- xdp server log:"
	cat "$STATE/xdp.log" 2>/dev/null
	echo "--- user-space server log:"
	cat "$STATE/user.log" 2>/dev/null
	return 1
}

setup_file() {
	export ROOT FILTERCTL CONN STATE NS_SRV NS_CLI IF_SRV IF_CLI PIN
	export PF_SKIP=""
	ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
	FILTERCTL="$ROOT/${BUILD:-build}/filterctl"
	CONN="$BATS_TEST_DIRNAME/tools/conn_burst.py"
	STATE="$BATS_FILE_TMPDIR"
	NS_SRV="postern-fsrv-$$"
	NS_CLI="postern-fcli-$$"
	IF_SRV="pfs$$"
	IF_CLI="pfc$$"
	PIN="/sys/fs/bpf/postern-test-$$"

	if [ "$(id -u)" -ne 0 ]; then
		PF_SKIP="not root: network namespaces and XDP need root"
		return 0
	fi
	if [ ! -x "$FILTERCTL" ]; then
		PF_SKIP="$FILTERCTL is missing (run make)"
		return 0
	fi
	local why
	if ! why=$("$FILTERCTL" probe 2>&1); then
		PF_SKIP="this machine cannot load the XDP program: $why"
		return 0
	fi

	ip netns add "$NS_SRV"
	ip netns add "$NS_CLI"
	ip link add "$IF_SRV" type veth peer name "$IF_CLI"
	ip link set "$IF_SRV" netns "$NS_SRV"
	ip link set "$IF_CLI" netns "$NS_CLI"
	ip -n "$NS_SRV" addr add 192.0.2.1/24 dev "$IF_SRV"
	ip -n "$NS_SRV" addr add 198.51.100.1/24 dev "$IF_SRV"
	ip -n "$NS_SRV" addr add 2001:db8::1/64 dev "$IF_SRV" nodad
	ip -n "$NS_SRV" addr add 2001:db8:1::1/64 dev "$IF_SRV" nodad
	local i
	for i in $(seq 2 20); do
		ip -n "$NS_CLI" addr add "192.0.2.$i/24" dev "$IF_CLI"
		ip -n "$NS_CLI" addr add "198.51.100.$i/24" dev "$IF_CLI"
	done
	ip -n "$NS_CLI" addr add 198.51.100.60/24 dev "$IF_CLI"
	ip -n "$NS_CLI" addr add 198.51.100.61/24 dev "$IF_CLI"
	ip -n "$NS_CLI" addr add 2001:db8::2/64 dev "$IF_CLI" nodad
	ip -n "$NS_CLI" addr add 2001:db8::3/64 dev "$IF_CLI" nodad
	ip -n "$NS_CLI" addr add 2001:db8:1::2/64 dev "$IF_CLI" nodad
	ip -n "$NS_SRV" link set lo up
	ip -n "$NS_CLI" link set lo up
	ip -n "$NS_SRV" link set "$IF_SRV" up
	ip -n "$NS_CLI" link set "$IF_CLI" up

	_start_xdp --keep
	_start_user
}

teardown_file() {
	[ -n "$PF_SKIP" ] && return 0
	_stop_server xdp
	_stop_server user
	"$FILTERCTL" --pin-root "$PIN" uninstall || true
	ip netns del "$NS_SRV" 2>/dev/null || true
	ip netns del "$NS_CLI" 2>/dev/null || true
	rm -rf "$PIN" "$PIN-none"
}

setup() {
	[ -z "$PF_SKIP" ] || skip "$PF_SKIP"
}

@test "xdp: the program is attached to the server's veth and the mode is reported" {
	run _xctl status
	[ "$status" -eq 0 ] || _fail "status failed"
	[ "$(_stat mode)" = xdp ] || _fail "not in xdp mode"
	echo "$output" | grep -Eq "^interface: $IF_SRV xdp=(native|generic)$" ||
		_fail "interface mode not reported"
	grep -Eq "filter interface=$IF_SRV xdp=(native|generic)" "$STATE/xdp.log" ||
		_fail "attach mode not logged"
	grep -q "filter mode=xdp" "$STATE/xdp.log" || _fail "mode not logged"
}

@test "xdp: a source above the rate has its SYNs dropped while another source is served" {
	run _burst 192.0.2.2 192.0.2.1 2525 20
	[ "$status" -eq 0 ] || _fail "client failed"
	ok=$(_field ok)
	dropped=$(_field dropped)
	[ "$ok" -ge "$BURST" ] && [ "$ok" -le $((BURST + 1)) ] ||
		_fail "expected $BURST admitted, got $ok"
	[ "$dropped" -eq $((20 - ok)) ] || _fail "expected the rest dropped"
	[ "$(_field rejected)" -eq 0 ] || _fail "rejected after accept: not XDP"

	run _burst 198.51.100.2 198.51.100.1 2525 3
	[ "$(_field ok)" -eq 3 ] || _fail "second source not served"

	# The kernel's counters prove where the drops happened.
	run _xctl status
	[ "$(_stat kernel.dropped_rate)" -ge 14 ] || _fail "kernel counter"
	echo "$output" | grep -Eq "^source: 192\.0\.2\.2/32 total=2[0-9] dropped=1[4-9]" ||
		_fail "per-source counters"
	# Drop events reach the daemon's log, rate-limited per source.
	for i in $(seq 1 20); do
		grep -q "filter dropped addr=192.0.2.2 port=2525 reason=rate" \
			"$STATE/xdp.log" && break
		sleep 0.1
	done
	[ "$(grep -c 'filter dropped addr=192.0.2.2 port=2525 reason=rate' "$STATE/xdp.log")" -eq 1 ] ||
		_fail "expected exactly one rate-limited log line"
}

@test "xdp: IPv6 sources are limited per /64" {
	run _burst 2001:db8::2 2001:db8::1 2525 20
	ok=$(_field ok)
	[ "$ok" -ge "$BURST" ] && [ "$ok" -le $((BURST + 1)) ] ||
		_fail "expected $BURST admitted, got $ok"
	# Same /64: already over the limit.
	run _burst 2001:db8::3 2001:db8::1 2525 2
	[ "$(_field dropped)" -eq 2 ] || _fail "/64 not grouped"
	run _burst 2001:db8:1::2 2001:db8:1::1 2525 3
	[ "$(_field ok)" -eq 3 ] || _fail "other /64 not served"
}

@test "xdp: a ban takes effect within a second and is lifted by unban" {
	t0=$(date +%s%N)
	run _xctl ban 192.0.2.3 60
	[ "$status" -eq 0 ] || _fail "ban failed"
	run _burst 192.0.2.3 192.0.2.1 2525 1
	t1=$(date +%s%N)
	[ "$(_field dropped)" -eq 1 ] || _fail "ban not enforced"
	[ $(((t1 - t0) / 1000000)) -lt 2000 ] || _fail "too slow"
	run _burst 198.51.100.3 198.51.100.1 2525 1
	[ "$(_field ok)" -eq 1 ] || _fail "unrelated source refused"
	run _xctl list
	echo "$output" | grep -q "^192.0.2.3/32 reason=manual expires_in=[56][0-9]s hits=1" ||
		_fail "ban not listed"
	run _xctl status
	[ "$(_stat kernel.dropped_ban)" -ge 1 ] || _fail "kernel ban counter"
	grep -q "^192.0.2.3/32 " "$STATE/xdp-bans" || _fail "not in the ban file"

	run _xctl unban 192.0.2.3
	[ "$status" -eq 0 ] || _fail "unban failed"
	run _burst 192.0.2.3 192.0.2.1 2525 1
	[ "$(_field ok)" -eq 1 ] || _fail "unban not effective"
	run _xctl unban 192.0.2.3
	[ "$status" -ne 0 ] || _fail "second unban should fail"
}

@test "xdp: a ban expires" {
	run _xctl ban 192.0.2.4 2s
	run _burst 192.0.2.4 192.0.2.1 2525 1
	[ "$(_field dropped)" -eq 1 ] || _fail "ban not enforced"
	sleep 2.5
	run _burst 192.0.2.4 192.0.2.1 2525 1
	[ "$(_field ok)" -eq 1 ] || _fail "ban did not expire"
}

@test "xdp: the allow list beats a ban" {
	run _xctl ban 192.0.2.0/24 60
	[ "$status" -eq 0 ] || _fail "ban failed"
	run _burst 192.0.2.5 192.0.2.1 2525 1
	[ "$(_field dropped)" -eq 1 ] || _fail "network ban not enforced"
	run _xctl allow 192.0.2.5
	[ "$status" -eq 0 ] || _fail "allow failed"
	run _burst 192.0.2.5 192.0.2.1 2525 10
	[ "$(_field ok)" -eq 10 ] || _fail "allowed source not served (or limited)"
	run _burst 192.0.2.6 192.0.2.1 2525 1
	[ "$(_field dropped)" -eq 1 ] || _fail "rest of the network served"
	# An allowed address cannot be banned at all.
	run _xctl ban 192.0.2.5 60
	[ "$status" -ne 0 ] && [[ "$output" == *"allow list"* ]] ||
		_fail "banning an allowed address should be refused"
	run _xctl unban 192.0.2.0/24
	[ "$status" -eq 0 ] || _fail "unban failed"
}

@test "xdp: bans survive a restart, and XDP keeps enforcing while the daemon is down" {
	run _xctl ban 192.0.2.7 forever
	[ "$status" -eq 0 ] || _fail "ban failed"
	_stop_server xdp            # was started with --keep
	run _burst 192.0.2.7 192.0.2.1 2525 1
	[ "$(_field dropped)" -eq 1 ] || _fail "not enforced while down"
	run _xctl status
	echo "$output" | grep -Eq "^interface: $IF_SRV xdp=(native|generic)$" ||
		_fail "detached while down"

	_start_xdp                  # this time without --keep
	run _burst 192.0.2.7 192.0.2.1 2525 1
	[ "$(_field dropped)" -eq 1 ] || _fail "ban lost across the restart"
	run _xctl list
	echo "$output" | grep -q "^192.0.2.7/32 reason=manual expires_in=0 (permanent)" ||
		_fail "ban not listed after restart"
	grep -q "^192.0.2.7/32 0 " "$STATE/xdp-bans" || _fail "not in the ban file"
	# Counters survived too (the maps are pinned).
	run _xctl status
	[ "$(_stat kernel.dropped_rate)" -ge 14 ] || _fail "counters lost"
}

@test "xdp: a stop without keep detaches; the ban file keeps the bans for the next start" {
	_stop_server xdp
	run ip -n "$NS_SRV" -d link show "$IF_SRV"
	[[ "$output" != *"prog/xdp"* ]] || _fail "still attached"
	# Nothing listens now: an unfiltered SYN is answered with a reset.
	run _burst 192.0.2.7 192.0.2.1 2525 1
	[ "$(_field refused)" -eq 1 ] || _fail "traffic still filtered"
	run _xctl status
	[ "$(_stat mode)" = userspace ] || _fail "status should see no active XDP filter"
	# posternctl while the daemon is down: the file only.
	run _xctl unban 192.0.2.7
	[ "$status" -eq 0 ] || _fail "unban in the file failed"
	run _xctl ban 192.0.2.8 forever
	_start_xdp --keep
	run _burst 192.0.2.7 192.0.2.1 2525 1
	[ "$(_field ok)" -eq 1 ] || _fail "unban made while down was lost"
	run _burst 192.0.2.8 192.0.2.1 2525 1
	[ "$(_field dropped)" -eq 1 ] || _fail "ban made while down was lost"
	run _xctl unban 192.0.2.8
}

@test "userspace: same limits at accept() with BPF forced off" {
	grep -q "filter mode=userspace" "$STATE/user.log" || _fail "mode not logged"
	run _uctl status
	[ "$(_stat mode)" = userspace ] || _fail "status mode"
	run _burst 192.0.2.9 192.0.2.1 2526 20
	ok=$(_field ok)
	[ "$ok" -ge "$BURST" ] && [ "$ok" -le $((BURST + 1)) ] ||
		_fail "expected $BURST admitted, got $ok"
	[ "$(_field rejected)" -eq $((20 - ok)) ] || _fail "expected 421s"
	[ "$(_field dropped)" -eq 0 ] || _fail "nothing is dropped in the kernel"
	run _burst 198.51.100.9 198.51.100.1 2526 3
	[ "$(_field ok)" -eq 3 ] || _fail "second source not served"
	run _burst 2001:db8::2 2001:db8::1 2526 20
	ok=$(_field ok)
	[ "$ok" -ge "$BURST" ] && [ "$ok" -le $((BURST + 1)) ] ||
		_fail "IPv6: expected $BURST admitted, got $ok"
	# The same decisions as the XDP path on the same sequence.
	run "$FILTERCTL" --mode userspace --rate "$RATE" --burst "$BURST" \
		admit 192.0.2.2x20 198.51.100.2x3
	[[ "$output" == *"192.0.2.2 pass=$BURST allowed=0 banned=0 rate=$((20 - BURST))"* ]] ||
		_fail "admit sequence"
}

@test "userspace: ban within a second, unban, expiry, allow beats ban" {
	run _uctl ban 192.0.2.10 60
	[ "$status" -eq 0 ] || _fail "ban failed"
	sleep 0.2                   # the daemon follows the file via inotify
	run _burst 192.0.2.10 192.0.2.1 2526 1
	[ "$(_field rejected)" -eq 1 ] || _fail "ban not enforced"
	[[ "$output" != *dropped=1* ]] || _fail "dropped?"
	run _uctl unban 192.0.2.10
	sleep 0.2
	run _burst 192.0.2.10 192.0.2.1 2526 1
	[ "$(_field ok)" -eq 1 ] || _fail "unban not effective"

	run _uctl ban 192.0.2.11 2s
	sleep 0.2
	run _burst 192.0.2.11 192.0.2.1 2526 1
	[ "$(_field rejected)" -eq 1 ] || _fail "ban not enforced"
	sleep 2.5
	run _burst 192.0.2.11 192.0.2.1 2526 1
	[ "$(_field ok)" -eq 1 ] || _fail "ban did not expire"

	# 198.51.100.60 is in this server's allow list.
	run _uctl ban 198.51.100.0/24 60
	sleep 0.2
	run _burst 198.51.100.60 198.51.100.1 2526 10
	[ "$(_field ok)" -eq 10 ] || _fail "allowed source refused"
	run _burst 198.51.100.61 198.51.100.1 2526 1
	[ "$(_field rejected)" -eq 1 ] || _fail "network ban not enforced"
	run _uctl unban 198.51.100.0/24
	grep -q "refused net=198.51.100.0/24 reason=banned" "$STATE/user.log" ||
		_fail "refusal not logged"
}

@test "userspace: bans survive a restart (ban file)" {
	run _uctl ban 192.0.2.12 forever
	sleep 0.2
	_stop_server user
	_start_user
	run _burst 192.0.2.12 192.0.2.1 2526 1
	[ "$(_field rejected)" -eq 1 ] || _fail "ban lost across the restart"
	run _uctl list
	echo "$output" | grep -q "^192.0.2.12/32 reason=manual" || _fail "not listed"
	run _uctl unban 192.0.2.12
	sleep 0.2
	run _burst 192.0.2.12 192.0.2.1 2526 1
	[ "$(_field ok)" -eq 1 ] || _fail "unban not effective"
}
