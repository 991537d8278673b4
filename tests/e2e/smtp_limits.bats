#!/usr/bin/env bats
# SMTP limits (RFC 5321 §4.5.3.1, RFC 1869): command line length, text line
# length, message size (SIZE= at MAIL and the real size), recipients per
# transaction, bad commands before disconnect. Each refused message leaves
# nothing in the store, and the session goes on where the RFC says so.

load helpers/common
load helpers/daemon
load helpers/smtp

setup_file() {
	_daemon_setup_file smtp.max_message_size=100K smtp.max_recipients=5 \
		smtp.max_command_line=512 smtp.max_text_line=1000 \
		smtp.max_bad_commands=5
	_add_domain example.test
	local i
	for i in 1 2 3 4 5 6; do
		_add_mailbox "u$i@example.test" "u$i-secret"
	done
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

@test "a command line of exactly max_command_line octets is accepted" {
	# "NOOP " + 505 + CRLF = 512 octets (RFC 5321 §4.1.1.9: NOOP takes a string)
	run -0 _smtp_ehlo_raw "L:NOOP $(_repeat_char 505)" R 'L:QUIT' R
	_assert_replies 220 250 '250 2.0.0' '221 2.0.0'
}

@test "a command line longer than max_command_line is 500 5.5.2" {
	# 513 octets with the CRLF
	run -0 _smtp_ehlo_raw "L:NOOP $(_repeat_char 506)" R
	_assert_reply 2 '^500 5\.5\.2'
}

@test "an over-long MAIL command is 500 5.5.2 and starts no transaction" {
	run -0 _smtp_ehlo_raw "L:MAIL FROM:<$(_repeat_char 600)@remote.test>" R
	_assert_reply 2 '^500 5\.5\.2'
	refute_output --partial '250 2.1.0'
}

@test "a 1 MiB line without CRLF does not hurt the daemon" {
	local junk="$BATS_TEST_TMPDIR/junk"
	head -c 1048576 /dev/zero | tr '\0' x >"$junk"
	run -0 _smtp_ehlo_raw "F:$junk" 'S:\r\nNOOP\r\n' R:2 'L:QUIT' R E
	# one 500 5.5.2 for the whole line, none of it run as a command; the
	# daemon may then go on (NOOP, QUIT) or close
	_assert_reply 2 '^500 5\.5\.2'
	refute_line --partial '500 5.5.1'
	assert_equal "$(_replies | grep -c '^500')" 1
	run -0 _smtp_raw 'L:QUIT' R
	_assert_replies 220 '221 2.0.0'
}

@test "a text line of 998 octets plus CRLF is accepted" {
	_clear_mailbox u1@example.test
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<u1@example.test>' R 'L:DATA' R \
		"S:Subject: 998\\r\\n\\r\\n$(_repeat_char 998)\\r\\n.\\r\\n" R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '250 2.0.0' '221 2.0.0'
	assert_equal "$(_count_new u1@example.test)" 1
}

@test "a text line over max_text_line is 500 5.5.2 after the data, nothing stored" {
	local before
	before=$(_count_all_mail)
	# 999 octets + CRLF = 1001 > 1000
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<u1@example.test>' R 'L:DATA' R \
		"S:Subject: 999\\r\\n\\r\\nshort\\r\\n$(_repeat_char 999)\\r\\nmore\\r\\n.\\r\\n" R \
		'L:RSET' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '500 5.5.2' '250 2.0.0' '221 2.0.0'
	assert_equal "$(_count_all_mail)" "$before"
}

@test "SIZE= over max_message_size is 552 5.3.4 at MAIL" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test> SIZE=102401' R \
		'L:MAIL FROM:<s@remote.test> SIZE=102400' R 'L:QUIT' R
	_assert_replies 220 250 '552 5.3.4' '250 2.1.0' '221 2.0.0'
}

@test "a huge SIZE= value is 552 5.3.4, not a crash" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test> SIZE=99999999999999999999999' R \
		'L:QUIT' R
	_assert_reply 2 '^(552 5\.3\.4|501 5\.5\.4)'
	_assert_reply 3 '^221 2\.0\.0'
}

@test "a message over max_message_size is 552 5.3.4 after the data, nothing stored, session goes on" {
	local msg wire before
	msg="$BATS_TEST_TMPDIR/big.eml"
	wire="$BATS_TEST_TMPDIR/big.wire"
	"$PY" "$TOOLS/msgtool.py" gen big "$msg" 150000
	"$PY" "$TOOLS/msgtool.py" wire "$msg" "$wire"
	before=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<u1@example.test>' R 'L:DATA' R "F:$wire" 'S:\r\n' R \
		'L:MAIL FROM:<s@remote.test>' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '552 5.3.4' '250 2.1.0' '221 2.0.0'
	assert_equal "$(_count_all_mail)" "$before"
}

@test "a message of exactly max_message_size octets is accepted" {
	local msg wire
	msg="$BATS_TEST_TMPDIR/edge.eml"
	wire="$BATS_TEST_TMPDIR/edge.wire"
	# The limit counts the message as received (headers and body, CRLF),
	# which msgtool makes just under 102400; pad it to exactly that size.
	"$PY" "$TOOLS/msgtool.py" gen big "$msg" 100000
	local left
	left=$((102400 - $(stat -c %s "$msg")))
	while ((left > 1000)); do
		printf '%s\r\n' "$(_repeat_char 500 y)" >>"$msg"
		left=$((left - 502))
	done
	printf '%s\r\n' "$(_repeat_char $((left - 2)) y)" >>"$msg"
	assert_equal "$(stat -c %s "$msg")" 102400
	"$PY" "$TOOLS/msgtool.py" wire "$msg" "$wire"
	_clear_mailbox u2@example.test
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<u2@example.test>' R 'L:DATA' R "F:$wire" 'S:\r\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '250 2.0.0' '221 2.0.0'
	assert_equal "$(_count_new u2@example.test)" 1
}

@test "too many recipients is 452 4.5.3; the accepted ones get the message" {
	local i
	for i in 1 2 3 4 5 6; do _clear_mailbox "u$i@example.test"; done
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<u1@example.test>' R 'L:RCPT TO:<u2@example.test>' R \
		'L:RCPT TO:<u3@example.test>' R 'L:RCPT TO:<u4@example.test>' R \
		'L:RCPT TO:<u5@example.test>' R 'L:RCPT TO:<u6@example.test>' R \
		'L:DATA' R 'S:Subject: five\r\n\r\nhi\r\n.\r\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.1.5' '250 2.1.5' \
		'250 2.1.5' '250 2.1.5' '452 4.5.3' 354 '250 2.0.0' '221 2.0.0'
	for i in 1 2 3 4 5; do
		assert_equal "$(_count_new "u$i@example.test")" 1
	done
	assert_equal "$(_count_new u6@example.test)" 0
}

@test "more than max_bad_commands errors gets 421 4.7.0 and the connection closes" {
	run -0 _smtp_ehlo_raw \
		'S:BOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\n' E
	assert_line --partial '421 4.7.0'
	assert_line -n -1 '<EOF>'
	local n
	n=$(grep -c '^500 5\.5\.1' <<<"$output" || true)
	# max_bad_commands=5: five errors are answered, the next one closes
	((n >= 5 && n <= 6)) || fail "expected 5 (or 6) '500 5.5.1' replies, got $n"
	# nothing after the 421 but the close
	assert_equal "$(_replies | tail -n 2 | head -n 1)" '421 4.7.0'
}

@test "exactly max_bad_commands errors are tolerated" {
	run -0 _smtp_ehlo_raw 'S:BOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\n' R:5 \
		'L:NOOP' R 'L:QUIT' R
	_assert_replies 220 250 '500 5.5.1' '500 5.5.1' '500 5.5.1' '500 5.5.1' \
		'500 5.5.1' '250 2.0.0' '221 2.0.0'
}

@test "the daemon still serves new sessions after all of the above" {
	run -0 _smtp_send_text s@remote.test u3@example.test "still alive"
	assert_output --partial '250 2.0.0 Ok: queued as'
}
