#!/usr/bin/env bats
# Pregreet: a client that talks before the greeting (pregreet_wait > 0) is
# logged and, with pregreet_action = reject, refused with 554 5.5.1 and
# disconnected; a patient client is served normally.

load helpers/common
load helpers/daemon
load helpers/smtp

PREGREET_CONFIG=(smtp.pregreet_wait=1000 smtp.pregreet_action=reject)

setup_file() {
	_daemon_setup_file "${PREGREET_CONFIG[@]}"
	_add_domain example.test
	_add_mailbox alice@example.test alice-secret
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

@test "a client that waits for the greeting is served" {
	run -0 _smtp_ehlo_raw 'L:QUIT' R E
	_assert_replies 220 250 '221 2.0.0' '<EOF>'
}

@test "swaks (a patient client) delivers" {
	_clear_mailbox alice@example.test
	run -0 _smtp_send_text s@remote.test alice@example.test patient
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new alice@example.test)" 1
}

@test "a client that talks first gets 554 5.5.1 and no greeting" {
	run -0 _smtp_raw --no-greeting 'L:EHLO early.test' E
	assert_line -n 0 --partial '554 5.5.1'
	refute_line --regexp '^220'
	assert_line -n -1 '<EOF>'
}

@test "a whole pipelined transaction sent before the greeting stores nothing" {
	local before
	before=$(_count_all_mail)
	run -0 _smtp_raw --no-greeting \
		'S:EHLO early.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: early\r\n\r\nearly\r\n.\r\nQUIT\r\n' E
	assert_line -n 0 --partial '554 5.5.1'
	refute_output --partial '250 '
	assert_equal "$(_count_all_mail)" "$before"
}

@test "the pregreet is logged" {
	run -0 _smtp_raw --no-greeting 'L:HELO early.test' E
	run -0 _log_since_test_start
	assert_output --regexp '[Pp]regreet'
}

@test "with pregreet_action = log the early talker is logged and served" {
	_daemon_write_config smtp.pregreet_wait=1000 smtp.pregreet_action=log
	_daemon_restart
	_test_setup
	run -0 _smtp_raw --no-greeting 'L:EHLO early.test' R:2 'L:QUIT' R E
	_assert_replies 220 250 '221 2.0.0' '<EOF>'
	run -0 _log_since_test_start
	assert_output --regexp '[Pp]regreet'
}
