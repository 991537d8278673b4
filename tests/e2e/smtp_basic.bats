#!/usr/bin/env bats
# SMTP basics (RFC 5321, 1869, 2920, 3463): greeting, EHLO extensions, the
# simple commands, sequence and syntax errors, a plain delivery, pipelining.

load helpers/common
load helpers/daemon
load helpers/smtp

setup_file() {
	local listen='127.0.0.1:@SMTP_PORT@'
	if _have_ipv6_loopback; then
		listen='127.0.0.1:@SMTP_PORT@, [::1]:@SMTP_PORT@'
	fi
	_daemon_setup_file "smtp.listen=$listen" smtp.max_message_size=20M
	_add_domain example.test
	_add_mailbox alice@example.test alice-secret
	_add_mailbox bob@example.test bob-secret
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

@test "greeting is 220 with the hostname and ESMTP" {
	run -0 _smtp_raw 'L:QUIT' R E
	assert_line -n 0 --regexp '^220 mx\.example\.test ESMTP( |$)'
	_assert_replies 220 '221 2.0.0' '<EOF>'
}

@test "EHLO names the host and advertises every extension" {
	run -0 _smtp_ehlo_raw 'L:QUIT' R
	assert_line -n 1 --regexp '^250-mx\.example\.test( |$)'
	assert_line --regexp '^250[- ]PIPELINING$'
	# 20M = 20 * 1024 * 1024 octets
	assert_line --regexp '^250[- ]SIZE 20971520$'
	assert_line --regexp '^250[- ]8BITMIME$'
	assert_line --regexp '^250[- ]ENHANCEDSTATUSCODES$'
	assert_line --regexp '^250[- ]SMTPUTF8$'
	assert_line --regexp '^250[- ]CHUNKING$'
	_assert_replies 220 250 '221 2.0.0'
}

@test "HELO answers 250 with the hostname" {
	run -0 _smtp_raw 'L:HELO client.test' R 'L:QUIT' R
	assert_line -n 1 --regexp '^250 mx\.example\.test( |$)'
}

@test "EHLO without a domain is a syntax error (501)" {
	run -0 _smtp_raw 'L:EHLO' R 'L:QUIT' R
	assert_line -n 1 --regexp '^501 '
}

@test "NOOP, RSET, HELP, VRFY and QUIT give their replies" {
	run -0 _smtp_ehlo_raw 'L:NOOP' R 'L:RSET' R 'L:HELP' R \
		'L:VRFY alice@example.test' R 'L:QUIT' R E
	_assert_replies 220 250 '250 2.0.0' '250 2.0.0' '214 2.0.0' '252 2.5.2' \
		'221 2.0.0' '<EOF>'
}

@test "an unknown command is 500 5.5.1 and the session goes on" {
	run -0 _smtp_ehlo_raw 'L:FROBNICATE now' R 'L:NOOP' R 'L:QUIT' R
	_assert_replies 220 250 '500 5.5.1' '250 2.0.0' '221 2.0.0'
}

@test "commands are case-insensitive" {
	run -0 _smtp_raw 'L:ehlo client.test' R 'L:mail from:<s@remote.test>' R \
		'L:rcpt to:<alice@example.test>' R 'L:rset' R 'L:quit' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.0.0' '221 2.0.0'
}

@test "MAIL before EHLO/HELO is 503 5.5.1" {
	run -0 _smtp_raw 'L:MAIL FROM:<s@remote.test>' R 'L:QUIT' R
	_assert_replies 220 '503 5.5.1' '221 2.0.0'
}

@test "RCPT before MAIL is 503 5.5.1" {
	run -0 _smtp_ehlo_raw 'L:RCPT TO:<alice@example.test>' R 'L:QUIT' R
	_assert_replies 220 250 '503 5.5.1' '221 2.0.0'
}

@test "a nested MAIL is 503 5.5.1" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:MAIL FROM:<t@remote.test>' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '503 5.5.1' '221 2.0.0'
}

@test "DATA with no accepted recipient is 554 5.5.1" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<nobody@example.test>' R 'L:DATA' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '550 5.1.1' '554 5.5.1' '221 2.0.0'
}

@test "DATA without MAIL is refused with a 5.5.1 sequence error" {
	run -0 _smtp_ehlo_raw 'L:DATA' R 'L:QUIT' R
	assert_regex "$(_replies | sed -n 3p)" '^(503|554) 5\.5\.1$'
}

@test "RSET ends the transaction" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:RSET' R \
		'L:RCPT TO:<alice@example.test>' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.0.0' '503 5.5.1' '221 2.0.0'
}

@test "a message is accepted with a queue id, stored, and the id is logged" {
	local before
	before=$(_count_new alice@example.test)
	run -0 _smtp_send_text sender@remote.test alice@example.test "basic delivery"
	assert_output --regexp '250 2\.0\.0 Ok: queued as [0-9A-Fa-f]{16}'
	local id
	id=$(_queue_id_in "$output")
	assert_equal "$(_count_new alice@example.test)" "$((before + 1))"
	run grep -F "$id" "$DAEMON_LOG"
	assert_success
}

@test "each accepted message gets its own queue id" {
	run -0 _smtp_send_text s@remote.test alice@example.test one
	local a b
	a=$(_queue_id_in "$output")
	run -0 _smtp_send_text s@remote.test alice@example.test two
	b=$(_queue_id_in "$output")
	[[ $a != "$b" ]] || fail "both messages got queue id $a"
}

@test "the null sender MAIL FROM:<> is accepted" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<>' R 'L:RCPT TO:<alice@example.test>' R \
		'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '221 2.0.0'
}

@test "recipient addresses are case-insensitive" {
	_clear_mailbox alice@example.test
	run -0 _smtp_send_text s@remote.test 'Alice@EXAMPLE.Test' "case"
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new alice@example.test)" 1
}

@test "one transaction delivers to several recipients" {
	_clear_mailbox alice@example.test
	_clear_mailbox bob@example.test
	run -0 _smtp_send_text s@remote.test alice@example.test,bob@example.test two
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new alice@example.test)" 1
	assert_equal "$(_count_new bob@example.test)" 1
}

@test "bad MAIL address syntax is 501 5.1.7" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<a b@remote.test>' R \
		'L:MAIL FROM:<sender@>' R 'L:MAIL FROM:<sender@remote..test>' R \
		'L:MAIL FROM:<sender@remote.test' R 'L:QUIT' R
	_assert_replies 220 250 '501 5.1.7' '501 5.1.7' '501 5.1.7' '501 5.1.7' '221 2.0.0'
}

@test "bad RCPT address syntax is 501 5.1.3" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<al ice@example.test>' R 'L:RCPT TO:<alice@>' R \
		'L:RCPT TO:<alice@example..test>' R 'L:RCPT TO:<alice@example.test' R \
		'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '501 5.1.3' '501 5.1.3' '501 5.1.3' \
		'501 5.1.3' '221 2.0.0'
}

@test "unknown MAIL and RCPT parameters are 555 5.5.4" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test> XFOO=bar' R \
		'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test> XFOO=1' R 'L:QUIT' R
	_assert_replies 220 250 '555 5.5.4' '250 2.1.0' '555 5.5.4' '221 2.0.0'
}

@test "malformed values of known parameters are 501 5.5.4" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test> SIZE=abc' R \
		'L:MAIL FROM:<s@remote.test> BODY=9BIT' R 'L:QUIT' R
	_assert_replies 220 250 '501 5.5.4' '501 5.5.4' '221 2.0.0'
}

@test "BODY=8BITMIME, SMTPUTF8 and SIZE= are accepted on MAIL" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test> BODY=8BITMIME SMTPUTF8 SIZE=1000' R \
		'L:RSET' R 'L:MAIL FROM:<s@remote.test> BODY=7BIT' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.0.0' '250 2.1.0' '221 2.0.0'
}

@test "a UTF-8 sender is accepted with SMTPUTF8" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<jörg@exämple.remote.test> SMTPUTF8' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '221 2.0.0'
}

@test "pipelined commands after EHLO are answered in order" {
	_clear_mailbox alice@example.test
	_clear_mailbox bob@example.test
	run -0 _smtp_ehlo_raw "I:$FIXTURES/smtp_pipelined.txt"
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '550 5.1.1' '250 2.1.5' 354 \
		'250 2.0.0' '221 2.0.0' '<EOF>'
	assert_equal "$(_count_new alice@example.test)" 1
	assert_equal "$(_count_new bob@example.test)" 1
}

@test "EHLO pipelined with the commands after it is answered in order" {
	run -0 _smtp_raw 'S:EHLO client.test\r\nNOOP\r\nMAIL FROM:<s@remote.test>\r\nRSET\r\nVRFY bob\r\nQUIT\r\n' \
		R:6 E
	_assert_replies 220 250 '250 2.0.0' '250 2.1.0' '250 2.0.0' '252 2.5.2' \
		'221 2.0.0' '<EOF>'
}

@test "a whole transaction in two writes, message text pipelined after 354" {
	_clear_mailbox alice@example.test
	run -0 _smtp_ehlo_raw \
		'S:MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n' R:3 \
		'S:Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n' R:2 E
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '250 2.0.0' '221 2.0.0' '<EOF>'
	assert_equal "$(_count_new alice@example.test)" 1
}

@test "the daemon answers on IPv6 loopback too" {
	_have_ipv6_loopback || skip "no ::1 on this host"
	run -0 "$PY" "$TOOLS/smtp_raw.py" --host ::1 --port "$SMTP_PORT" \
		'L:EHLO client.test' R 'L:QUIT' R
	_assert_replies 220 250 '221 2.0.0'
}
