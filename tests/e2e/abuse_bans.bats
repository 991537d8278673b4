#!/usr/bin/env bats
# posternd turns abuse into bans in its connection filter: failed logins
# (POP3 and SMTP AUTH after STARTTLS) per source and per account, address
# harvesting, pregreet, SMTP smuggling and sessions cut off for errors; bans
# grow for repeat offenders, spare the allow list and survive a restart.
# Clients come from a client network namespace (loopback is always
# allow-listed, so these tests cannot run on it): instance "xdp" enforces
# bans in XDP (SMTP 2525, submission 2587, POP3 2526), instance "user" at
# accept() with [filter] mode = userspace (3525, 3587, 3526). The rate
# limit is set high here: every refusal below comes from a ban.
#
# Needs root; skips with the reason when the machine cannot load BPF.

load helpers/common
load helpers/filter_netns

SETTINGS=(
	filter.rate=600/min filter.burst=50 filter.allow=198.51.100.60
	smtp.pregreet_wait=300 smtp.max_bad_commands=2
	abuse.auth_failures=5 abuse.auth_failures_per_account=8
	abuse.unknown_recipients=3 abuse.bad_commands=2
)
GOOD=alice@example.test
GOOD_PW=alice-secret

setup_file() {
	_fn_setup_file pab || return 1
	[[ -z $FN_SKIP ]] || return 0
	local name
	_fn_instance xdp xdp 2525 "${SETTINGS[@]}"
	_fn_instance user userspace 3525 "${SETTINGS[@]}"
	for name in xdp user; do
		_fn_ctl "$name" domain add example.test || return 1
		printf '%s\n' "$GOOD_PW" | _fn_ctl "$name" mailbox add "$GOOD" || return 1
		_fn_start "$name" || return 1
	done
}

teardown_file() { _fn_teardown_file; }
setup() { _fn_skip_unless_ready; }
teardown() { _fn_test_teardown; }

# Waits (3 s at most) for a line in an instance's log.
# @param $1 instance name
# @param $2 extended regular expression
__wait_log() {
	_repeat_until_timeout 3 grep -Eq "$2" "$(_fn_log "$1")"
}

# Succeeds when posternctl ban list has a line starting with text.
# @param $1 instance name
# @param $2 text
__ban_listed() {
	_fn_ctl "$1" ban list | grep -qF -- "$2"
}

# Asserts that one connection from a source to an instance's SMTP port is
# refused the way the instance's mode refuses a ban.
# @param $1 instance name
# @param $2 source address
# @param $3 destination address
__assert_banned() {
	local how=dropped
	[[ $1 == user ]] && how=rejected
	run -0 _fn_burst "$2" "$3" "$(_fn_port "$1")" 1
	[[ $(_fn_field "$how") -eq 1 ]] || fail "$2 not refused ($how) by $1: $output"
}

# Asserts that a source is served by an instance's SMTP port.
# @param $1 instance name
# @param $2 source address
# @param $3 destination address
__assert_served() {
	run -0 _fn_burst "$2" "$3" "$(_fn_port "$1")" 1
	[[ $(_fn_field ok) -eq 1 ]] || fail "$2 not served by $1: $output"
}

# Five failed POP3 logins in one session from src, then the checks.
# @param $1 instance name
# @param $2 offending source
# @param $3 another source
__pop3_brute_force() {
	local name=$1 bad=$2 good=$3 pop3=$(($(_fn_port "$1") + 1))
	__assert_served "$name" "$bad" 192.0.2.1
	run -0 _fn_pop3_login "$bad" 192.0.2.1 "$pop3" "guess-$name@example.test" wrong 5
	[[ $(grep -c -- '-ERR \[AUTH\] Invalid login' <<<"$output") -eq 5 ]] ||
		fail "expected five failed logins: $output"
	__wait_log "$name" "abuse ban addr=$bad net=$bad/32 reason=auth for=10m offence=1$"
	__assert_banned "$name" "$bad" 192.0.2.1
	# In user-space mode posternctl reads the ban file, which posternd
	# writes within a second.
	_repeat_until_timeout 3 __ban_listed "$name" "$bad/32 reason=auth"
	run -0 _fn_ctl "$name" ban list
	assert_line --regexp "^${bad//./\\.}/32 reason=auth expires_in=(9m[0-9]+s|10m([0-9]s)?) hits=[0-9]+$"
	# The POP3 port is refused too, and another source logs in.
	run -0 _fn_pop3_login "$bad" 192.0.2.1 "$pop3" "$GOOD" "$GOOD_PW"
	refute_output --partial "+OK Logged in."
	run -0 _fn_pop3_login "$good" 192.0.2.1 "$pop3" "$GOOD" "$GOOD_PW"
	assert_line "+OK Logged in."
}

# Five failed SMTP AUTH PLAIN (after STARTTLS) from one source, then the
# checks.
# @param $1 instance name
# @param $2 offending source
# @param $3 another source
__smtp_brute_force() {
	local name=$1 bad=$2 good=$3 sub=$(($(_fn_port "$1") + 62)) i
	for i in 1 2 3 4 5; do
		run _fn_smtp_auth "$bad" 192.0.2.1 "$sub" "$GOOD" "wrong$i"
		assert_output --partial "535 5.7.8"
	done
	__wait_log "$name" "abuse ban addr=$bad net=$bad/32 reason=auth for=10m offence=1$"
	__assert_banned "$name" "$bad" 192.0.2.1
	run _fn_smtp_auth "$good" 192.0.2.1 "$sub" "$GOOD" "$GOOD_PW"
	assert_output --partial "235 2.7.0 Authentication successful"
}

@test "xdp: five failed POP3 logins ban the source; another source still logs in" {
	__pop3_brute_force xdp 192.0.2.20 192.0.2.21
	# Dropped in the kernel, before any handshake.
	run -0 _fn_pop3_login 192.0.2.20 192.0.2.1 2526 "$GOOD" "$GOOD_PW"
	assert_output "dropped"
}

@test "xdp: five failed SMTP AUTH logins after STARTTLS ban the source; a good AUTH still works" {
	__smtp_brute_force xdp 192.0.2.22 192.0.2.23
}

@test "xdp: four failures from one source are not enough" {
	run -0 _fn_pop3_login 192.0.2.24 192.0.2.1 2526 four@example.test wrong 4
	[[ $(grep -c -- '-ERR \[AUTH\]' <<<"$output") -eq 4 ]] || fail "$output"
	__assert_served xdp 192.0.2.24 192.0.2.1
	run -0 _fn_ctl xdp ban list
	refute_output --partial "192.0.2.24/"
}

@test "userspace: five failed POP3 logins ban the source; refused at accept" {
	__pop3_brute_force user 192.0.2.20 192.0.2.21
	run -0 _fn_pop3_login 192.0.2.20 192.0.2.1 3526 "$GOOD" "$GOOD_PW"
	assert_output "-ERR [SYS/TEMP] your address is temporarily blocked"
}

@test "userspace: five failed SMTP AUTH logins ban the source; a good AUTH still works" {
	__smtp_brute_force user 192.0.2.22 192.0.2.23
	run -0 _fn_smtp_raw 192.0.2.22 192.0.2.1 3525
	assert_line "421 4.7.0 mx.example.test Error: your address is temporarily blocked"
}

@test "xdp: slow brute force on one account bans every source that took part" {
	local src
	# Two failures each: below the per-source threshold; the account's
	# eighth failure bans all four.
	for src in 192.0.2.25 192.0.2.26 192.0.2.27 192.0.2.28; do
		run -0 _fn_pop3_login "$src" 192.0.2.1 2526 victim@example.test wrong 2
	done
	for src in 192.0.2.25 192.0.2.26 192.0.2.27 192.0.2.28; do
		__wait_log xdp "abuse ban addr=$src net=$src/32 reason=auth for=10m offence=1 account=victim@example.test$"
		__assert_banned xdp "$src" 192.0.2.1
	done
	# A newcomer failing on the same account is banned at once; failing
	# on another account is not.
	run -0 _fn_pop3_login 192.0.2.29 192.0.2.1 2526 Victim@Example.TEST wrong 1
	__wait_log xdp "abuse ban addr=192.0.2.29 .*account=victim@example.test$"
	run -0 _fn_pop3_login 192.0.2.30 192.0.2.1 2526 other@example.test wrong 1
	__assert_served xdp 192.0.2.30 192.0.2.1
}

@test "xdp: an allow-listed source is never banned, and the log says so" {
	run -0 _fn_pop3_login 198.51.100.60 198.51.100.1 2526 spare@example.test wrong 5
	__wait_log xdp "abuse not-banned addr=198.51.100.60 net=198.51.100.60/32 reason=auth allow-listed=yes$"
	__assert_served xdp 198.51.100.60 198.51.100.1
	run -0 _fn_ctl xdp ban list
	refute_output --partial "198.51.100.60"
}

@test "xdp: IPv6 failures ban the source's /64" {
	run -0 _fn_pop3_login 2001:db8::2 2001:db8::1 2526 six@example.test wrong 5
	__wait_log xdp "abuse ban addr=2001:db8::2 net=2001:db8::/64 reason=auth for=10m offence=1$"
	__assert_banned xdp 2001:db8::3 2001:db8::1
	__assert_served xdp 2001:db8:1::2 2001:db8:1::1
}

@test "xdp: address harvesting (unknown recipients) bans the source" {
	run -0 _fn_smtp_raw 192.0.2.31 192.0.2.1 2525 "EHLO client.example.test" \
		"MAIL FROM:<h@remote.test>" "RCPT TO:<nosuch1@example.test>" \
		"RCPT TO:<nosuch2@example.test>" "RCPT TO:<nosuch3@example.test>" QUIT
	[[ $(grep -c '^550 ' <<<"$output") -eq 3 ]] || fail "expected three 550: $output"
	__wait_log xdp "abuse ban addr=192.0.2.31 net=192.0.2.31/32 reason=harvest for=10m offence=1$"
	__assert_banned xdp 192.0.2.31 192.0.2.1
}

@test "xdp: an SMTP smuggling attempt bans the source at once" {
	run -0 _fn_smtp_raw 192.0.2.32 192.0.2.1 2525 "EHLO client.example.test" \
		"MAIL FROM:<s@remote.test>" "RCPT TO:<$GOOD>" DATA \
		'DATA:Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<x@remote.test>\r\n.\r\n' QUIT
	assert_line --regexp '^550 5\.6\.0 '
	__wait_log xdp "abuse ban addr=192.0.2.32 net=192.0.2.32/32 reason=smuggling for=10m offence=1$"
	__assert_banned xdp 192.0.2.32 192.0.2.1
}

@test "xdp: sessions cut off for bad commands ban the source" {
	local i
	for i in 1 2; do
		run -0 _fn_smtp_raw 192.0.2.33 192.0.2.1 2525 XYZZY XYZZY XYZZY XYZZY
		assert_line --partial "421 4.7.0 mx.example.test Error: too many errors"
	done
	__wait_log xdp "abuse ban addr=192.0.2.33 net=192.0.2.33/32 reason=bad-commands for=10m offence=1$"
	__assert_banned xdp 192.0.2.33 192.0.2.1
}

@test "xdp: pregreet bans at once, and a repeat offender is banned longer ([abuse] reload)" {
	local conf
	conf=$(_fn_conf xdp)
	printf 'ban_time = 2s\nban_time_factor = 3\n' >>"$conf"
	_fn_hup xdp
	__wait_log xdp "reload: filter and abuse settings applied"

	run -0 _fn_smtp_raw 192.0.2.34 192.0.2.1 2525 "NOW:EHLO early.example.test"
	assert_line --partial "554 5.5.1"
	__wait_log xdp "abuse ban addr=192.0.2.34 net=192.0.2.34/32 reason=pregreet for=2s offence=1$"
	__assert_banned xdp 192.0.2.34 192.0.2.1
	sleep 2.2
	__assert_served xdp 192.0.2.34 192.0.2.1
	run -0 _fn_smtp_raw 192.0.2.34 192.0.2.1 2525 "NOW:EHLO early.example.test"
	__wait_log xdp "abuse ban addr=192.0.2.34 net=192.0.2.34/32 reason=pregreet for=6s offence=2$"
	__assert_banned xdp 192.0.2.34 192.0.2.1

	sed -i '/^ban_time = 2s$/d; /^ban_time_factor = 3$/d' "$conf"
	_fn_hup xdp
	_repeat_until_timeout 5 bash -c "[[ \$(grep -c 'reload: filter and abuse settings applied' '$(_fn_log xdp)') -ge 2 ]]"
}

@test "xdp: bans made by the daemon survive its restart, with their reason" {
	_fn_stop xdp
	_fn_start xdp
	__assert_banned xdp 192.0.2.20 192.0.2.1
	__assert_banned xdp 192.0.2.31 192.0.2.1
	run -0 _fn_ctl xdp ban list
	assert_line --regexp '^192\.0\.2\.20/32 reason=auth '
	assert_line --regexp '^192\.0\.2\.31/32 reason=harvest '
	assert_line --regexp '^192\.0\.2\.32/32 reason=smuggling '
	assert_line --regexp '^192\.0\.2\.33/32 reason=bad-commands '
	assert_line --regexp '^2001:db8::/64 reason=auth '
	# And posternctl lifts them like any other ban.
	run -0 _fn_ctl xdp ban del 192.0.2.20
	__assert_served xdp 192.0.2.20 192.0.2.1
}
