#!/usr/bin/env bats
# Local delivery into Maildir, checked byte for byte: what swaks sent is what
# is on disk (LF line ends) and what curl pop3:// and poplib read back (CRLF),
# after the Return-Path line and the Received header that delivery prepends.
# Also: layout, permissions, Dovecot-style names with S= and W=, hard links
# across many recipients, the null sender, and a mid-DATA disconnect.

load helpers/common
load helpers/daemon
load helpers/smtp
load helpers/pop3

setup_file() {
	_daemon_setup_file smtp.max_message_size=20M smtp.max_recipients=100
	_add_domain example.test
	_add_domain many.test
	_add_mailbox alice@example.test alice-secret
	_add_mailbox bob@example.test bob-secret
	local i
	for i in $(seq -w 1 55); do
		_add_mailbox "r$i@many.test" "r$i-secret"
	done
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

# Sends a message file to a mailbox and checks it byte for byte on disk,
# through curl pop3:// and through poplib.
# @param $1 message file (CRLF line ends)
# @param $2 address
# @param $3 password
# @param $4 "nopoplib" to skip the poplib read (large messages)
__roundtrip() {
	local msg=$1 addr=$2 pass=$3 t=$BATS_TEST_TMPDIR file
	_clear_mailbox "$addr"
	run -0 _smtp_send_file sender@remote.test "$addr" "$msg"
	assert_output --partial '250 2.0.0 Ok: queued as'
	file=$(_only_mail "$addr")

	"$PY" "$TOOLS/msgtool.py" lf "$msg" "$t/expected.lf"
	run -0 "$PY" "$TOOLS/msgtool.py" strip "$file" "$t/disk"
	_assert_same_bytes "$t/expected.lf" "$t/disk"

	run -0 _curl_retr "$addr" "$pass" 1 "$t/curl.eml"
	run -0 "$PY" "$TOOLS/msgtool.py" strip "$t/curl.eml" "$t/curl"
	_assert_same_bytes "$msg" "$t/curl"

	if [[ ${4:-} != nopoplib ]]; then
		run -0 _pop3 "$addr" "$pass" "retr:1:$t/poplib.eml"
		run -0 "$PY" "$TOOLS/msgtool.py" strip "$t/poplib.eml" "$t/poplib"
		_assert_same_bytes "$msg" "$t/poplib"
	fi
}

# Converts an LF fixture to a CRLF message in the test's tmpdir and prints
# its path.
# @param $1 fixture file name
__fixture_crlf() {
	local out="$BATS_TEST_TMPDIR/$1.crlf"
	"$PY" "$TOOLS/msgtool.py" crlf "$FIXTURES/$1" "$out"
	printf '%s\n' "$out"
}

@test "the Maildir has tmp, new and cur with mode 0700, messages 0600" {
	_clear_mailbox alice@example.test
	run -0 _smtp_send_text sender@remote.test alice@example.test layout
	local md d
	md=$(_maildir_of alice@example.test)
	assert_equal "$md" "$DATA_DIR/mail/example.test/alice"
	for d in "$md" "$md/tmp" "$md/new" "$md/cur"; do
		[[ -d $d ]] || fail "$d is missing"
		assert_equal "$d $(stat -c %a "$d")" "$d 700"
	done
	assert_equal "$(stat -c %a "$(_only_mail alice@example.test)")" 600
	assert_equal "$(__count_files "$md/tmp")" 0
}

@test "message names are <time>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<crlf size>" {
	_clear_mailbox alice@example.test
	run -0 _smtp_send_file sender@remote.test alice@example.test "$(__fixture_crlf dots.eml)"
	local file name size lines
	file=$(_only_mail alice@example.test)
	name=$(basename "$file")
	[[ $name =~ ^[0-9]+\.M[0-9]+P[0-9]+Q[0-9]+\.mx\.example\.test,S=([0-9]+),W=([0-9]+)$ ]] ||
		fail "bad name: $name"
	size=$(stat -c %s "$file")
	lines=$(tr -cd '\n' <"$file" | wc -c)
	assert_equal "S=${BASH_REMATCH[1]}" "S=$size"
	assert_equal "W=${BASH_REMATCH[2]}" "W=$((size + lines))"
	# on disk with LF line ends only
	run grep -c $'\r' "$file"
	assert_output 0
}

@test "delivery prepends one Return-Path line and one Received header" {
	_clear_mailbox alice@example.test
	run -0 _smtp_send_text sender@remote.test alice@example.test trace
	local file
	file=$(_only_mail alice@example.test)
	run -0 "$PY" "$TOOLS/msgtool.py" trace "$file"
	assert_line -n 0 'Return-Path: <sender@remote.test>'
	assert_line -n 1 --regexp '^Received: '
	# the Received header names this host; continuation lines start with TAB
	assert_output --partial 'mx.example.test'
	run -0 grep -c '^Return-Path:' "$file"
	assert_output 1
}

@test "the null sender is written as Return-Path: <>" {
	_clear_mailbox alice@example.test
	run -0 _smtp_send_text '' alice@example.test "null sender"
	assert_output --partial '250 2.0.0 Ok: queued as'
	run -0 head -n 1 "$(_only_mail alice@example.test)"
	assert_output 'Return-Path: <>'
}

@test "dot-lines survive byte for byte (stuffing undone exactly, a lone dot kept)" {
	__roundtrip "$(__fixture_crlf dots.eml)" alice@example.test alice-secret
}

@test "an 8-bit body with every octet but NUL, CR and LF survives byte for byte" {
	__roundtrip "$(__fixture_crlf 8bit.eml)" alice@example.test alice-secret
}

@test "folded headers and a message's own Received header survive byte for byte" {
	__roundtrip "$(__fixture_crlf folded.eml)" alice@example.test alice-secret
}

@test "998-octet lines survive byte for byte" {
	local msg="$BATS_TEST_TMPDIR/long.eml"
	"$PY" "$TOOLS/msgtool.py" gen long "$msg" 998
	__roundtrip "$msg" alice@example.test alice-secret
}

@test "a 10 MiB message survives byte for byte" {
	local msg="$BATS_TEST_TMPDIR/big.eml"
	"$PY" "$TOOLS/msgtool.py" gen big "$msg" 10485760
	__roundtrip "$msg" bob@example.test bob-secret nopoplib
}

@test "55 recipients in one transaction: one copy each, all hard links of one file" {
	local i to="" inode first=""
	for i in $(seq -w 1 55); do
		_clear_mailbox "r$i@many.test"
		to+="${to:+,}r$i@many.test"
	done
	run -0 _smtp_send_text sender@remote.test "$to" "fifty-five"
	assert_output --partial '250 2.0.0 Ok: queued as'
	for i in $(seq -w 1 55); do
		assert_equal "r$i $(_count_new "r$i@many.test")" "r$i 1"
		inode=$(stat -c %i "$(_only_mail "r$i@many.test")")
		first=${first:-$inode}
		assert_equal "r$i inode $inode" "r$i inode $first"
	done
	local links
	links=$(stat -c %h "$(_only_mail r01@many.test)")
	((links >= 55)) || fail "link count is $links, expected 55"
}

@test "a client that disconnects mid-DATA leaves nothing behind" {
	local before md
	before=$(_count_all_mail)
	md=$(_maildir_of alice@example.test)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:DATA' R \
		'S:Subject: cut\r\n\r\nthis message never ends\r\nsecond line' X
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354
	# the daemon cleans up its spool file when it sees the close
	_repeat_until_timeout 10 __spool_is_empty
	assert_equal "$(_count_all_mail)" "$before"
	assert_equal "$(__count_files "$md/tmp")" 0
}

@test "a disconnect right after CRLF. without the final CRLF stores nothing" {
	local before
	before=$(_count_all_mail)
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:DATA' R \
		'S:Subject: almost\r\n\r\nbody\r\n.' X
	_repeat_until_timeout 10 __spool_is_empty
	assert_equal "$(_count_all_mail)" "$before"
}

@test "the daemon still delivers after the disconnects" {
	_clear_mailbox alice@example.test
	run -0 _smtp_send_text sender@remote.test alice@example.test after
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new alice@example.test)" 1
}

# Succeeds when data_dir/spool holds no file.
__spool_is_empty() {
	[[ $(find "$DATA_DIR/spool" -type f 2>/dev/null | wc -l) -eq 0 ]]
}
