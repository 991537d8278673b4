#!/usr/bin/env bats
# CHUNKING (RFC 3030): BDAT chunks, LAST, BDAT 0 LAST, pipelined chunks,
# chunk data stored verbatim (no dot-unstuffing), bare CR/LF refused, size
# limit, and BDAT data never read as commands.

load helpers/common
load helpers/daemon
load helpers/smtp

setup_file() {
	_daemon_setup_file smtp.max_message_size=100K
	_add_domain example.test
	_add_mailbox alice@example.test alice-secret
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

# Checks that alice's only message, minus the trace lines, is exactly the
# given text (rawclient escapes, CRLF), stored with LF line ends.
# @param $1 expected message text
__assert_stored() {
	local file
	file=$(_only_mail alice@example.test)
	"$PY" - "$1" "$file" <<'EOF'
import codecs, sys
want = codecs.decode(sys.argv[1].encode(), "unicode_escape").encode("latin-1")
want = want.replace(b"\r\n", b"\n")
got = open(sys.argv[2], "rb").read().split(b"\n")
i = 2
while i < len(got) and got[i].startswith(b"\t"):
    i += 1
got = b"\n".join(got[i:])
if got != want:
    sys.exit("stored %r\nwanted %r" % (got, want))
EOF
}

@test "one BDAT LAST chunk delivers the message" {
	_clear_mailbox alice@example.test
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R \
		'BL:Subject: bdat\r\n\r\nhello\r\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.0.0' '221 2.0.0'
	_assert_reply 4 '^250 2\.0\.0 Ok: queued as [0-9A-Fa-f]{16}'
	__assert_stored 'Subject: bdat\r\n\r\nhello\r\n'
}

@test "BDAT data is stored verbatim: dots are not unstuffed" {
	_clear_mailbox alice@example.test
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R \
		'BL:Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.0.0' '221 2.0.0'
	__assert_stored 'Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n'
}

@test "several chunks are acknowledged with their size and joined" {
	_clear_mailbox alice@example.test
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R \
		'B:Subject: chunks\r\n\r\nfirst ' R 'B:part, ' R 'BL:last part\r\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.0.0' '250 2.0.0' '250 2.0.0' '221 2.0.0'
	_assert_reply 4 '^250 2\.0\.0 25 octets received'
	_assert_reply 5 '^250 2\.0\.0 6 octets received'
	_assert_reply 6 'queued as'
	__assert_stored 'Subject: chunks\r\n\r\nfirst part, last part\r\n'
}

@test "a CRLF split between two chunks is a line end, not a bare CR" {
	_clear_mailbox alice@example.test
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R \
		'B:Subject: split\r' R 'B:\n\r\nbody\r' R 'BL:\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.0.0' '250 2.0.0' '250 2.0.0' '221 2.0.0'
	__assert_stored 'Subject: split\r\n\r\nbody\r\n'
}

@test "BDAT 0 LAST ends a chunked message" {
	_clear_mailbox alice@example.test
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R \
		'B:Subject: zero last\r\n\r\nbody\r\n' R 'L:BDAT 0 LAST' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.0.0' '250 2.0.0' '221 2.0.0'
	_assert_reply 5 'queued as'
	__assert_stored 'Subject: zero last\r\n\r\nbody\r\n'
}

@test "pipelined BDAT chunks are answered in order" {
	_clear_mailbox alice@example.test
	run -0 _smtp_ehlo_raw \
		'S:MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\n' \
		'B:Subject: pipelined\r\n\r\n' 'B:one\r\n' 'BL:two\r\n' R:5 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.0.0' '250 2.0.0' '250 2.0.0' '221 2.0.0'
	_assert_reply 6 'queued as'
	__assert_stored 'Subject: pipelined\r\n\r\none\r\ntwo\r\n'
}

@test "a second transaction with BDAT in the same session works" {
	_clear_mailbox alice@example.test
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'BL:Subject: one\r\n\r\n1\r\n' R \
		'L:MAIL FROM:<s@remote.test>' R 'L:RCPT TO:<alice@example.test>' R \
		'BL:Subject: two\r\n\r\n2\r\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.0.0' '250 2.1.0' \
		'250 2.1.5' '250 2.0.0' '221 2.0.0'
	assert_equal "$(_count_new alice@example.test)" 2
}

@test "BDAT with no accepted recipient is 554 5.5.1 and its data is not run as commands" {
	local before
	before=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<nobody@example.test>' R \
		'BL:RSET\r\nNOOP\r\nQUIT\r\n' R 'L:NOOP' R 'L:QUIT' R E
	_assert_replies 220 250 '250 2.1.0' '550 5.1.1' '554 5.5.1' '250 2.0.0' '221 2.0.0' '<EOF>'
	assert_equal "$(_count_all_mail)" "$before"
}

@test "a bare LF in a BDAT message is refused with 550 5.6.0, nothing stored" {
	local before
	before=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R \
		'BL:Subject: bare lf\r\n\r\none\ntwo\r\n' R 'L:NOOP' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '550 5.6.0' '250 2.0.0' '221 2.0.0'
	assert_equal "$(_count_all_mail)" "$before"
}

@test "a bare CR in a non-LAST chunk fails the transaction by the LAST chunk" {
	local before
	before=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R \
		'B:Subject: bare cr\r\n\r\none\rtwo\r\n' 'BL:three\r\n' R:2 'L:NOOP' R 'L:QUIT' R
	# RFC 3030 lets the server refuse at the bad chunk or at LAST; either
	# way the LAST chunk must not be accepted and 550 5.6.0 is given.
	assert_line --partial '550 5.6.0'
	refute_output --partial 'queued as'
	assert_equal "$(_replies | tail -n 2 | tr '\n' ' ')" '250 2.0.0 221 2.0.0 '
	assert_equal "$(_count_all_mail)" "$before"
}

@test "DATA after BDAT in the same transaction is 503 5.5.1" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'B:Subject: mixed\r\n\r\n' R \
		'L:DATA' R 'L:RSET' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.0.0' '503 5.5.1' '250 2.0.0' '221 2.0.0'
}

@test "a BDAT message over max_message_size is 552 5.3.4 at LAST, nothing stored, session goes on" {
	local before
	before=$(_count_all_mail)
	local line chunk="" i
	line="$(_repeat_char 998)\\r\\n"
	for ((i = 0; i < 60; i++)); do chunk+=$line; done
	# 60000 octets fit; 60000 more in the LAST chunk go over 102400
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R "B:$chunk" R "BL:$chunk" R \
		'L:MAIL FROM:<s@remote.test>' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.0.0' '552 5.3.4' \
		'250 2.1.0' '221 2.0.0'
	refute_output --partial 'queued as'
	assert_equal "$(_count_all_mail)" "$before"
}

@test "BDAT with a malformed size is 501" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:BDAT abc' R 'L:QUIT' R
	_assert_reply 4 '^501 '
	_assert_reply 5 '^221 2\.0\.0'
}
