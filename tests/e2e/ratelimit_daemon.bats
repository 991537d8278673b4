#!/usr/bin/env bats
# The connection filter as posternd runs it, driven with posternctl: real
# SMTP traffic from a client network namespace to two posternd instances in
# a server namespace (TEST-NET addresses on a veth pair). Instance "xdp"
# attaches the XDP program to the server's veth (SMTP 2525); instance
# "user" has [filter] mode = userspace (SMTP 3525), the fallback when BPF
# cannot load. Both: rate 6/min, burst 5, so no token comes back during a
# test and counts are exact; 198.51.100.60 is allow-listed. Every load is
# bounded (tools/conn_burst.py: <= 20 connections, 0.8 s, timeout 10).
#
# Needs root; skips with the reason when the machine cannot load BPF.

load helpers/common
load helpers/filter_netns

BURST=5
LIMITS=(filter.rate=6/min filter.burst=$BURST filter.allow=198.51.100.60)

setup_file() {
	_fn_setup_file pdr || return 1
	[[ -z $FN_SKIP ]] || return 0
	_fn_instance xdp xdp 2525 "${LIMITS[@]}"
	_fn_instance user userspace 3525 "${LIMITS[@]}"
	_fn_start xdp
	_fn_start user
}

teardown_file() { _fn_teardown_file; }

setup() {
	[[ $BATS_TEST_DESCRIPTION == config:* ]] || _fn_skip_unless_ready
}

teardown() { _fn_test_teardown; }

# Asserts that a burst let exactly the burst through (or one more, when a
# token came back) and refused the rest the given way.
# @param $1 how the rest ended: dropped (XDP) or rejected (421)
# @param $2 connections in the burst
__assert_limited() {
	local ok
	ok=$(_fn_field ok)
	[[ $ok -ge $BURST && $ok -le $((BURST + 1)) ]] ||
		fail "expected $BURST admitted, got: $output"
	[[ $(_fn_field "$1") -eq $(($2 - ok)) ]] || fail "expected the rest $1: $output"
}

@test "config: [filter] and [abuse] problems are reported with their line" {
	local conf="$BATS_TEST_TMPDIR/bad.conf"
	cat >"$conf" <<EOF
[server]
data_dir = $BATS_TEST_TMPDIR/data
[filter]
rate = fast
ports = 25
ports = 26
no_such_key = 1
[abuse]
ban_time = soon
auth_failures = -1
EOF
	run -1 "$POSTERND" -c "$conf" --check-config
	assert_line "$conf:4: bad value 'fast' for key 'rate' in section [filter]: expected a rate such as 10/s, 600/min or 100/h (1 to 1000000)"
	assert_line "$conf:6: duplicate key 'ports' in section [filter] (first set on line 5)"
	assert_line "$conf:7: unknown key 'no_such_key' in section [filter]"
	assert_line --partial "$conf:9: bad value 'soon' for key 'ban_time' in section [abuse]: expected a duration"
	assert_line --partial "$conf:10: bad value '-1' for key 'auth_failures' in section [abuse]"
}

@test "xdp: posternd attaches the filter to the interface and reports the mode" {
	run -0 _fn_ctl xdp filter status
	assert_line "mode: xdp"
	assert_line --regexp "^interface: $FN_IF_SRV xdp=(native|generic)$"
	assert_line "live: yes (XDP maps under $FN_PIN)"
	# The listen ports are protected without being listed in [filter].
	assert_line "ports: 25, 110, 465, 587, 995, 2525, 2526, 2587"
	run -0 grep -E "filter interface=$FN_IF_SRV xdp=(native|generic)" "$(_fn_log xdp)"
	run -0 grep "filter mode=xdp" "$(_fn_log xdp)"
}

@test "xdp: a source above the rate has its SYNs dropped while another source is served" {
	run -0 _fn_burst 192.0.2.2 192.0.2.1 2525 20
	__assert_limited dropped 20
	[[ $(_fn_field rejected) -eq 0 ]] || fail "refused after accept, not in XDP: $output"
	run -0 _fn_burst 198.51.100.2 198.51.100.1 2525 3
	[[ $(_fn_field ok) -eq 3 ]] || fail "second source not served: $output"
	# The kernel's counters prove where the drops happened.
	run -0 _fn_ctl xdp filter status
	[[ $(_fn_stat kernel.dropped_rate) -ge 14 ]] || fail "kernel counter: $output"
	assert_line --regexp '^source: 192\.0\.2\.2/32 total=2[0-9] dropped=1[4-9] '
	# The daemon logs the kernel's drop events, rate-limited per source.
	_repeat_until_timeout 3 grep -q 'filter dropped addr=192.0.2.2 port=2525 reason=rate' \
		"$(_fn_log xdp)"
}

@test "xdp: IPv6 sources are limited per /64" {
	run -0 _fn_burst 2001:db8::2 2001:db8::1 2525 20
	__assert_limited dropped 20
	run -0 _fn_burst 2001:db8::3 2001:db8::1 2525 2
	[[ $(_fn_field dropped) -eq 2 ]] || fail "same /64 not grouped: $output"
	run -0 _fn_burst 2001:db8:1::2 2001:db8:1::1 2525 3
	[[ $(_fn_field ok) -eq 3 ]] || fail "other /64 not served: $output"
}

@test "xdp: posternctl ban add takes effect within a second; ban del lifts it" {
	local t0 t1
	t0=$(date +%s%N)
	run -0 _fn_ctl xdp ban add 192.0.2.3 --for 1h
	assert_output "banned 192.0.2.3/32 for 1h"
	run -0 _fn_burst 192.0.2.3 192.0.2.1 2525 1
	t1=$(date +%s%N)
	[[ $(_fn_field dropped) -eq 1 ]] || fail "ban not enforced: $output"
	(((t1 - t0) / 1000000 < 2000)) || fail "took $(((t1 - t0) / 1000000)) ms"
	run -0 _fn_burst 198.51.100.3 198.51.100.1 2525 1
	[[ $(_fn_field ok) -eq 1 ]] || fail "unrelated source refused: $output"
	run -0 _fn_ctl xdp ban list
	assert_line --regexp '^192\.0\.2\.3/32 reason=manual expires_in=(59m[0-9]+s|1h) hits=1$'
	run -0 _fn_ctl xdp filter status
	[[ $(_fn_stat kernel.dropped_ban) -ge 1 ]] || fail "kernel ban counter: $output"

	run -0 _fn_ctl xdp ban del 192.0.2.3
	assert_output "unbanned 192.0.2.3/32"
	run -0 _fn_burst 192.0.2.3 192.0.2.1 2525 1
	[[ $(_fn_field ok) -eq 1 ]] || fail "ban del not effective: $output"
	run -1 _fn_ctl xdp ban del 192.0.2.3
	assert_output --partial "no ban for 192.0.2.3/32"
	run -2 _fn_ctl xdp ban add
	run -1 _fn_ctl xdp ban add 192.0.2.300
	assert_output --partial "invalid network"
}

@test "xdp: a ban expires (--for 2s)" {
	run -0 _fn_ctl xdp ban add 192.0.2.4 --for 2s
	run -0 _fn_burst 192.0.2.4 192.0.2.1 2525 1
	[[ $(_fn_field dropped) -eq 1 ]] || fail "ban not enforced: $output"
	sleep 2.5
	run -0 _fn_burst 192.0.2.4 192.0.2.1 2525 1
	[[ $(_fn_field ok) -eq 1 ]] || fail "ban did not expire: $output"
	run -0 _fn_ctl xdp ban list
	refute_output --partial "192.0.2.4/32"
}

@test "xdp: the allow list beats a ban, and an allow-listed address cannot be banned" {
	run -0 _fn_ctl xdp ban add 198.51.100.0/24 --for 1h
	run -0 _fn_burst 198.51.100.61 198.51.100.1 2525 1
	[[ $(_fn_field dropped) -eq 1 ]] || fail "network ban not enforced: $output"
	# Allowed: neither banned nor rate limited.
	run -0 _fn_burst 198.51.100.60 198.51.100.1 2525 10
	[[ $(_fn_field ok) -eq 10 ]] || fail "allowed source refused: $output"
	run -1 _fn_ctl xdp ban add 198.51.100.60
	assert_output --partial "198.51.100.60/32 is on the allow list"
	run -1 _fn_ctl xdp ban add 127.0.0.1
	assert_output --partial "is on the allow list"
	run -0 _fn_ctl xdp ban del 198.51.100.0/24
}

@test "xdp: bans survive a daemon restart; posternctl works while it is down" {
	run -0 _fn_ctl xdp ban add 192.0.2.7 --for forever
	assert_output "banned 192.0.2.7/32 permanently"
	_fn_stop xdp
	# Stopped without keep_attached: detached, nothing filters any more.
	run ip -n "$FN_NS_SRV" -d link show "$FN_IF_SRV"
	refute_output --partial "prog/xdp"
	run -0 _fn_ctl xdp filter status
	assert_line "live: no (posternd is not running with this configuration; no counters)"
	assert_line "bans: 1"
	# While it is down, posternctl edits the ban file.
	run -0 _fn_ctl xdp ban add 192.0.2.8 --for 1h
	run -0 _fn_ctl xdp ban list
	assert_line --regexp '^192\.0\.2\.8/32 reason=manual '

	_fn_start xdp
	run -0 _fn_burst 192.0.2.7 192.0.2.1 2525 1
	[[ $(_fn_field dropped) -eq 1 ]] || fail "ban lost across the restart: $output"
	run -0 _fn_burst 192.0.2.8 192.0.2.1 2525 1
	[[ $(_fn_field dropped) -eq 1 ]] || fail "ban made while down lost: $output"
	run -0 _fn_ctl xdp ban list
	assert_line --regexp '^192\.0\.2\.7/32 reason=manual expires_in=never hits=[0-9]+$'
	# The counters are in pinned maps: they survived too.
	run -0 _fn_ctl xdp filter status
	[[ $(_fn_stat kernel.dropped_rate) -ge 14 ]] || fail "counters lost: $output"
	run -0 _fn_ctl xdp ban del 192.0.2.7
	run -0 _fn_ctl xdp ban del 192.0.2.8
	run -0 _fn_burst 192.0.2.7 192.0.2.1 2525 1
	[[ $(_fn_field ok) -eq 1 ]] || fail "ban del after restart not effective: $output"
}

@test "xdp: SIGHUP applies a new [filter] configuration" {
	local conf
	conf=$(_fn_conf xdp)
	sed -i 's/^burst = .*/burst = 7/' "$conf"
	_fn_hup xdp
	_repeat_until_timeout 5 grep -q "reload: filter and abuse settings applied" "$(_fn_log xdp)"
	run -0 _fn_ctl xdp filter status
	assert_line "burst: 7"
	sed -i "s/^burst = .*/burst = $BURST/" "$conf"
	_fn_hup xdp
	_repeat_until_timeout 5 bash -c "[[ \$(grep -c 'reload: filter and abuse settings applied' '$(_fn_log xdp)') -ge 2 ]]"
	run -0 _fn_ctl xdp filter status
	assert_line "burst: $BURST"
}

@test "userspace: posternd reports the fallback mode with its live counters" {
	run -0 grep "filter mode=userspace" "$(_fn_log user)"
	run -0 _fn_ctl user filter status
	assert_line "mode: userspace"
	assert_line "reason: mode = userspace"
	assert_line --regexp '^live: yes \(posternd, [0-9]+s ago\)$'
}

@test "userspace: a source above the rate gets 421 at accept while another is served" {
	run -0 _fn_burst 192.0.2.9 192.0.2.1 3525 20
	__assert_limited rejected 20
	[[ $(_fn_field dropped) -eq 0 ]] || fail "nothing is dropped in the kernel: $output"
	run -0 _fn_burst 198.51.100.9 198.51.100.1 3525 3
	[[ $(_fn_field ok) -eq 3 ]] || fail "second source not served: $output"
	run -0 _fn_burst 2001:db8::4 2001:db8::1 3525 20
	__assert_limited rejected 20
	# The reply is the polite one; the refusal is logged once.
	run -0 _fn_smtp_raw 192.0.2.9 192.0.2.1 3525
	assert_line "421 4.7.0 mx.example.test Error: too many connections from your address"
	run -0 grep -c "listener: refused addr=192.0.2.9 net=192.0.2.9/32 reason=rate" "$(_fn_log user)"
	# Counters come from posternd (published once a second).
	sleep 1.2
	run -0 _fn_ctl user filter status
	[[ $(_fn_stat accept.dropped_rate) -ge 29 ]] || fail "accept counter: $output"
	assert_line --regexp '^source: 192\.0\.2\.9/32 total=2[0-9] dropped=1[4-9] '
}

@test "userspace: ban add within a second, ban del, expiry, allow beats a ban" {
	run -0 _fn_ctl user ban add 192.0.2.10 --for 1h
	sleep 0.5 # posternd follows the ban file through inotify
	run -0 _fn_burst 192.0.2.10 192.0.2.1 3525 1
	[[ $(_fn_field rejected) -eq 1 ]] || fail "ban not enforced: $output"
	run -0 _fn_smtp_raw 192.0.2.10 192.0.2.1 3525
	assert_line "421 4.7.0 mx.example.test Error: your address is temporarily blocked"
	run -0 _fn_pop3_login 192.0.2.10 192.0.2.1 3526 nobody x
	assert_line "-ERR [SYS/TEMP] your address is temporarily blocked"
	run -0 _fn_ctl user ban list
	assert_line --regexp '^192\.0\.2\.10/32 reason=manual expires_in=(59m[0-9]+s|1h) hits=0$'
	run -0 _fn_ctl user ban del 192.0.2.10
	sleep 0.5
	run -0 _fn_burst 192.0.2.10 192.0.2.1 3525 1
	[[ $(_fn_field ok) -eq 1 ]] || fail "ban del not effective: $output"

	run -0 _fn_ctl user ban add 192.0.2.11 --for 2s
	sleep 0.5
	run -0 _fn_burst 192.0.2.11 192.0.2.1 3525 1
	[[ $(_fn_field rejected) -eq 1 ]] || fail "ban not enforced: $output"
	sleep 2.6 # the ban file keeps whole seconds, rounded up
	run -0 _fn_burst 192.0.2.11 192.0.2.1 3525 1
	[[ $(_fn_field ok) -eq 1 ]] || fail "ban did not expire: $output"

	run -0 _fn_ctl user ban add 198.51.100.0/24 --for 1h
	sleep 0.5
	run -0 _fn_burst 198.51.100.60 198.51.100.1 3525 10
	[[ $(_fn_field ok) -eq 10 ]] || fail "allowed source refused: $output"
	run -0 _fn_burst 198.51.100.61 198.51.100.1 3525 1
	[[ $(_fn_field rejected) -eq 1 ]] || fail "network ban not enforced: $output"
	run -1 _fn_ctl user ban add 198.51.100.60
	assert_output --partial "is on the allow list"
	run -0 _fn_ctl user ban del 198.51.100.0/24
	run -0 grep -q "listener: refused addr=198.51.100.61 net=198.51.100.0/24 reason=banned ban=manual" \
		"$(_fn_log user)"
}

@test "userspace: bans survive a restart" {
	run -0 _fn_ctl user ban add 192.0.2.12 --for forever
	_fn_stop user
	run -0 _fn_ctl user filter status
	assert_line --regexp '^live: no '
	_fn_start user
	run -0 _fn_burst 192.0.2.12 192.0.2.1 3525 1
	[[ $(_fn_field rejected) -eq 1 ]] || fail "ban lost across the restart: $output"
	run -0 _fn_ctl user ban list
	assert_line --regexp '^192\.0\.2\.12/32 reason=manual expires_in=never '
	run -0 _fn_ctl user ban del 192.0.2.12
	sleep 0.5
	run -0 _fn_burst 192.0.2.12 192.0.2.1 3525 1
	[[ $(_fn_field ok) -eq 1 ]] || fail "ban del not effective: $output"
}
