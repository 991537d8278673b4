#!/usr/bin/env bats
# No open relay: an unauthenticated client may only send to local domains.
# Every classic trick to reach a foreign domain through a local address is
# refused with 554 5.7.1 and stores nothing anywhere.

load helpers/common
load helpers/daemon
load helpers/smtp

setup_file() {
	_daemon_setup_file
	_add_domain example.test
	_add_mailbox alice@example.test alice-secret
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

# Prints every directory under the mail store (to prove none was added).
__store_dirs() {
	find "$DATA_DIR/mail" -type d 2>/dev/null | sort
}

# Tries one relay recipient in a full transaction and checks that it is
# refused with 554 5.7.1, that DATA then has no recipient (554 5.5.1), and
# that the store did not change.
# @param $1 the recipient, as written inside RCPT TO:<...>
__refused_relay() {
	local dirs count
	dirs=$(__store_dirs)
	count=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		"L:RCPT TO:<$1>" R 'L:DATA' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '554 5.7.1' '554 5.5.1' '221 2.0.0'
	assert_equal "$(_count_all_mail)" "$count"
	assert_equal "$(__store_dirs)" "$dirs"
}

@test "a foreign domain is relaying: 554 5.7.1" {
	__refused_relay user@foreign.test
}

@test "a foreign domain in upper case is relaying too" {
	__refused_relay USER@FOREIGN.TEST
}

@test "percent hack user%foreign@local is refused" {
	__refused_relay 'user%foreign.test@example.test'
}

@test "percent hack with a local user part alice%foreign@local is refused" {
	__refused_relay 'alice%foreign.test@example.test'
}

@test "quoted local part \"user@foreign\"@local is refused" {
	__refused_relay '"user@foreign.test"@example.test'
}

@test "source route <@local:user@foreign> is refused" {
	__refused_relay '@example.test:user@foreign.test'
}

@test "source route through several hops to a foreign address is refused" {
	__refused_relay '@example.test,@mx.example.test:user@foreign.test'
}

@test "bang path foreign!user@local is refused" {
	__refused_relay 'foreign.test!user@example.test'
}

@test "double at user@foreign@local is refused" {
	local dirs count
	dirs=$(__store_dirs)
	count=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		'L:RCPT TO:<user@foreign.test@example.test>' R 'L:DATA' R 'L:QUIT' R
	# It is both a relay attempt and bad syntax: either refusal will do,
	# as long as nothing is accepted or stored.
	_assert_reply 3 '^(554 5\.7\.1|501 5\.1\.3)'
	_assert_reply 4 '^554 5\.5\.1'
	assert_equal "$(_count_all_mail)" "$count"
	assert_equal "$(__store_dirs)" "$dirs"
}

@test "a source route to a local address is accepted and ignored (RFC 5321 C)" {
	_clear_mailbox alice@example.test
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		'L:RCPT TO:<@mx.example.test:alice@example.test>' R 'L:DATA' R \
		'S:Subject: routed\r\n\r\nhi\r\n.\r\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '250 2.0.0' '221 2.0.0'
	assert_equal "$(_count_new alice@example.test)" 1
}

@test "relay recipients mixed with a local one: only the local one gets it" {
	_clear_mailbox alice@example.test
	local dirs
	dirs=$(__store_dirs)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		'L:RCPT TO:<user@foreign.test>' R \
		'L:RCPT TO:<alice@example.test>' R \
		'L:RCPT TO:<user%foreign.test@example.test>' R \
		'L:RCPT TO:<foreign.test!user@example.test>' R 'L:DATA' R \
		'S:Subject: mixed\r\n\r\nhi\r\n.\r\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '554 5.7.1' '250 2.1.5' '554 5.7.1' \
		'554 5.7.1' 354 '250 2.0.0' '221 2.0.0'
	assert_equal "$(_count_new alice@example.test)" 1
	assert_equal "$(_count_all_mail)" 1
	assert_equal "$(__store_dirs)" "$dirs"
}

@test "the null sender cannot relay either" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<>' R 'L:RCPT TO:<user@foreign.test>' R \
		'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '554 5.7.1' '221 2.0.0'
}
