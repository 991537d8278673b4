#!/usr/bin/env bats
# Idle and data timeouts (RFC 5321 §4.5.3.2, RFC 1939 §3): a silent SMTP
# client gets 421 4.4.2 and is disconnected, a stalled DATA stores nothing,
# and a POP3 autologout never applies deletions. The daemon runs with
# 2-second timeouts; the tests only wait for the daemon to act (no timing
# assertion).

load helpers/common
load helpers/daemon
load helpers/smtp
load helpers/pop3

setup_file() {
	_daemon_setup_file smtp.idle_timeout=2 smtp.data_timeout=2 pop3.idle_timeout=2
	_add_domain example.test
	_add_mailbox alice@example.test alice-secret
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

@test "a client silent after the greeting gets 421 4.4.2 and is disconnected" {
	run -0 _smtp_raw E
	_assert_replies 220 '421 4.4.2' '<EOF>'
}

@test "a client silent in the middle of a transaction gets 421 4.4.2" {
	local before
	before=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R E
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '421 4.4.2' '<EOF>'
	assert_equal "$(_count_all_mail)" "$before"
}

@test "a stalled DATA gets 421 4.4.2 and stores nothing" {
	local before
	before=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:DATA' R \
		'S:Subject: stalled\r\n\r\npartial line' E
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '421 4.4.2' '<EOF>'
	assert_equal "$(_count_all_mail)" "$before"
	run find "$DATA_DIR/spool" -type f
	assert_output ''
}

@test "a POP3 client silent after the greeting is disconnected" {
	run -0 _pop3_raw E
	assert_line -n 0 --regexp '^\+OK'
	assert_line -n -1 '<EOF>'
}

@test "a POP3 autologout applies no deletion and frees the maildrop" {
	_clear_mailbox alice@example.test
	_smtp_send_text s@remote.test alice@example.test one >/dev/null
	run -0 _pop3_raw 'L:USER alice@example.test' R 'L:PASS alice-secret' R \
		'L:DELE 1' R E
	assert_line -n 3 --regexp '^\+OK'
	assert_line -n -1 '<EOF>'
	run -0 _pop3 alice@example.test alice-secret stat
	assert_line -n 0 --regexp '^1 [0-9]+$'
}
