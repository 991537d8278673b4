#!/usr/bin/env bats
# SMTP smuggling: only CRLF.CRLF ends DATA (RFC 5321 §4.1.1.4). A bare LF
# or bare CR in the data is refused with 550 5.6.0 after the real end, so
# that a fake end-of-data (\n.\n, \r.\r, ...) can never end a message early
# and the text after it is never run as commands: the whole DATA gets
# exactly one reply, and the smuggled recipient gets nothing.

load helpers/common
load helpers/daemon
load helpers/smtp

setup_file() {
	_daemon_setup_file
	_add_domain example.test
	_add_mailbox alice@example.test alice-secret
	_add_mailbox carol@example.test carol-secret
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

# Sends a message for alice whose text holds a fake end-of-data followed
# by a second, smuggled transaction for carol; checks that the DATA gets
# exactly one reply, 550 5.6.0, that the session then answers QUIT, and
# that neither mailbox received anything.
# @param $1 the fake end-of-data, in rawclient escapes (e.g. '\n.\n')
__smuggle() {
	local alice carol
	alice=$(_count_new alice@example.test)
	carol=$(_count_new carol@example.test)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:DATA' R \
		"S:From: <sender@remote.test>\\r\\nSubject: first\\r\\n\\r\\nfirst message${1}MAIL FROM:<evil@remote.test>\\r\\nRCPT TO:<carol@example.test>\\r\\nDATA\\r\\nFrom: <evil@remote.test>\\r\\nSubject: smuggled\\r\\n\\r\\nsmuggled message\\r\\n.\\r\\n" \
		R 'L:QUIT' R E
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '550 5.6.0' '221 2.0.0' '<EOF>'
	assert_equal "$(_count_new alice@example.test)" "$alice"
	assert_equal "$(_count_new carol@example.test)" "$carol"
}

@test 'smuggling with \n.\n is refused as one message' {
	__smuggle '\n.\n'
}

@test 'smuggling with \r.\r is refused as one message' {
	__smuggle '\r.\r'
}

@test 'smuggling with \r\n.\n is refused as one message' {
	__smuggle '\r\n.\n'
}

@test 'smuggling with \n.\r\n is refused as one message' {
	__smuggle '\n.\r\n'
}

@test 'smuggling with \r.\r\n is refused as one message' {
	__smuggle '\r.\r\n'
}

@test 'smuggling with \r\n.\r is refused as one message' {
	__smuggle '\r\n.\r'
}

@test 'smuggling with \r\n\x00.\r\n is not an end either' {
	local alice carol
	alice=$(_count_new alice@example.test)
	carol=$(_count_new carol@example.test)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:DATA' R \
		'S:Subject: nul\r\n\r\nfirst\r\n\x00.\r\nRSET\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<carol@example.test>\r\n.\r\n' \
		R 'L:QUIT' R E
	# Whatever the daemon thinks of the NUL, the text after it is data:
	# one reply to the DATA (accepted or refused), then QUIT's.
	local replies
	mapfile -t replies < <(_replies)
	assert_equal "${#replies[@]}" 8
	assert_equal "${replies[4]}" 354
	assert_equal "${replies[6]}" '221 2.0.0'
	assert_equal "$(_count_new carol@example.test)" "$carol"
	local now
	now=$(_count_new alice@example.test)
	((now <= alice + 1)) || fail "more than one message was stored for alice"
}

@test "a bare LF inside the text is 550 5.6.0, nothing stored, session goes on" {
	local before
	before=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:DATA' R \
		'S:Subject: bare lf\r\n\r\nline one\nline two\r\n.\r\n' R \
		'L:MAIL FROM:<sender@remote.test>' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '550 5.6.0' '250 2.1.0' '221 2.0.0'
	assert_equal "$(_count_all_mail)" "$before"
}

@test "a bare CR inside the text is 550 5.6.0, nothing stored, session goes on" {
	local before
	before=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:DATA' R \
		'S:Subject: bare cr\r\n\r\nline one\rline two\r\n.\r\n' R \
		'L:MAIL FROM:<sender@remote.test>' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '550 5.6.0' '250 2.1.0' '221 2.0.0'
	assert_equal "$(_count_all_mail)" "$before"
}

@test "a bare LF in the headers is refused too" {
	local before
	before=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:DATA' R \
		'S:Subject: x\nX-Other: y\r\n\r\nbody\r\n.\r\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '550 5.6.0' '221 2.0.0'
	assert_equal "$(_count_all_mail)" "$before"
}

@test "a CRLF split across two writes still ends the data properly" {
	_clear_mailbox alice@example.test
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:DATA' R \
		'S:Subject: split\r' 'S:\n\r\nbody\r' 'S:\n.' 'S:\r' 'S:\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '250 2.0.0' '221 2.0.0'
	assert_equal "$(_count_new alice@example.test)" 1
}
