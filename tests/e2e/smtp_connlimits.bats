#!/usr/bin/env bats
# Connection limits, checked at connect: more than max_connections_per_ip
# from one address, or more than max_connections in total, get 421 4.7.0
# and are closed; freed slots are given again.

load helpers/common
load helpers/daemon
load helpers/smtp

setup_file() {
	_daemon_setup_file server.max_connections=3 server.max_connections_per_ip=2
}

teardown_file() { _daemon_teardown_file; }
setup() {
	_test_setup
	# earlier sessions must be gone before a test counts connections
	_repeat_until_timeout 10 __slot_free
}
teardown() { _test_teardown; }

# Succeeds when all three slots are free: two connections from 127.0.0.1
# and one from 127.0.0.9, open at the same time, all get the greeting.
__slot_free() {
	local out
	out=$(_smtp_raw --source 127.0.0.1 '@2=127.0.0.1' '@3=127.0.0.9' \
		'@1' 'L:QUIT' R E '@2' 'L:QUIT' R E '@3' 'L:QUIT' R E 2>/dev/null)
	[[ $(grep -c '^220' <<<"$out") -eq 3 ]]
}

@test "a third connection from one address gets 421 4.7.0" {
	run -0 _smtp_raw --source 127.0.0.1 '@2=127.0.0.1' '@3=127.0.0.1' E
	assert_line -n 0 --regexp '^220'
	assert_line -n 1 '@2=127.0.0.1'
	assert_line -n 2 --regexp '^220'
	assert_line -n 3 '@3=127.0.0.1'
	assert_line -n 4 --partial '421 4.7.0'
	assert_line -n 5 '<EOF>'
}

@test "a fourth connection in total gets 421 4.7.0" {
	run -0 _smtp_raw --source 127.0.0.2 '@2=127.0.0.3' '@3=127.0.0.4' '@4=127.0.0.5' E
	assert_line -n 0 --regexp '^220'
	assert_line -n 2 --regexp '^220'
	assert_line -n 4 --regexp '^220'
	assert_line -n 5 '@4=127.0.0.5'
	assert_line -n 6 --partial '421 4.7.0'
	assert_line -n 7 '<EOF>'
}

@test "slots are given back when sessions end" {
	local i
	for i in 1 2 3 4 5 6; do
		run -0 _smtp_raw 'L:QUIT' R E
		_assert_replies 220 '221 2.0.0' '<EOF>'
	done
}
