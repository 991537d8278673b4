#!/usr/bin/env bats
# POP3 (RFC 1939, 2449, 5034): greeting, CAPA, USER/PASS and AUTH PLAIN
# logins, STAT/LIST/UIDL/RETR/TOP/DELE/RSET/NOOP/QUIT, octet counts, the
# exclusive maildrop lock, deletion only at QUIT, stable UIDLs.

load helpers/common
load helpers/daemon
load helpers/smtp
load helpers/pop3

setup_file() {
	_daemon_setup_file
	_add_domain example.test
	local u
	for u in alice dele drop quit lock uidl; do
		_add_mailbox "$u@example.test" "$u-secret"
	done
	# alice: three messages, left alone by every test (read-only)
	local n
	for n in 1 2 3; do
		_smtp_send_text sender@remote.test alice@example.test "message $n" >/dev/null ||
			return 1
	done
	_smtp_send_file sender@remote.test alice@example.test \
		"$(__crlf_fixture dots.eml)" >/dev/null || return 1
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

# Writes a CRLF copy of a fixture into the file tmpdir and prints its path.
# @param $1 fixture name
__crlf_fixture() {
	local out="$BATS_FILE_TMPDIR/$1.crlf"
	"$PY" "$TOOLS/msgtool.py" crlf "$FIXTURES/$1" "$out"
	printf '%s\n' "$out"
}

# Prints the W= sizes of a mailbox's messages in POP3 order: oldest first,
# i.e. by the delivery time and then the microseconds in the name
# ("<time>.M<usec>P<pid>Q<n>...").
# @param $1 address
__w_sizes() {
	local md
	md=$(_maildir_of "$1")
	find "$md/new" "$md/cur" -maxdepth 1 -type f -printf '%f\n' 2>/dev/null |
		sort -t. -k1,1n -k2.2,2n | sed -E 's/.*,W=([0-9]+).*/\1/'
}

# Delivers N short messages to an address (after emptying it).
# @param $1 address
# @param $2 count
__fill() {
	_clear_mailbox "$1"
	local i
	for ((i = 1; i <= $2; i++)); do
		_smtp_send_text sender@remote.test "$1" "fill $i" >/dev/null ||
			fail "delivery $i to $1 failed"
	done
}

@test "the greeting is +OK and carries no APOP timestamp" {
	run -0 _pop3_raw 'L:QUIT' R E
	assert_line -n 0 --regexp '^\+OK'
	refute_line -n 0 --regexp '<[^>]*@[^>]*>'
	assert_line -n 1 --regexp '^\+OK'
	assert_line -n 2 '<EOF>'
}

@test "CAPA lists TOP UIDL USER SASL PLAIN RESP-CODES AUTH-RESP-CODE PIPELINING IMPLEMENTATION" {
	run -0 _pop3_raw 'L:CAPA' M 'L:QUIT' R
	assert_line -n 1 --regexp '^\+OK'
	assert_line 'TOP'
	assert_line 'UIDL'
	assert_line 'USER'
	assert_line --regexp '^SASL( [A-Z0-9-]+)* PLAIN( |$)'
	assert_line 'RESP-CODES'
	assert_line 'AUTH-RESP-CODE'
	assert_line 'PIPELINING'
	assert_line --regexp '^IMPLEMENTATION '
	refute_line --regexp '^APOP'
	assert_line '.'
}

@test "USER/PASS logs in; STAT counts the messages and their CRLF octets" {
	local sizes total=0 s
	sizes=$(__w_sizes alice@example.test)
	for s in $sizes; do total=$((total + s)); done
	run -0 _pop3_raw "I:$FIXTURES/pop3_login.txt"
	assert_line -n 1 --regexp '^\+OK'
	assert_line -n 2 --regexp '^\+OK'
	assert_line -n 3 "+OK 4 $total"
	assert_line -n 4 --regexp '^\+OK'
	assert_line -n 5 '<EOF>'
}

@test "LIST gives each message's CRLF size; LIST n gives one" {
	local expected
	expected=$(__w_sizes alice@example.test | awk '{ print NR " " $1 }')
	run -0 _pop3 alice@example.test alice-secret list
	assert_equal "$(sed '$d' <<<"$output")" "$expected"
	run -0 _pop3_raw 'L:USER alice@example.test' R 'L:PASS alice-secret' R \
		'L:LIST 2' R 'L:LIST' M 'L:QUIT' R
	assert_line -n 3 "+OK $(sed -n 2p <<<"$expected")"
	assert_line -n 4 --regexp '^\+OK'
	assert_line -n 9 '.'
}

@test "curl pop3:// lists the messages" {
	local expected
	expected=$(__w_sizes alice@example.test | awk '{ print NR " " $1 }')
	run -0 _curl_list alice@example.test alice-secret
	assert_equal "$(tr -d '\r' <<<"$output")" "$expected"
}

@test "LIST size equals the octets RETR sends (CRLF, without dot-stuffing)" {
	local t=$BATS_TEST_TMPDIR n size
	for n in 1 4; do
		run -0 _curl_retr alice@example.test alice-secret "$n" "$t/m$n"
		size=$(__w_sizes alice@example.test | sed -n "${n}p")
		assert_equal "message $n: $(stat -c %s "$t/m$n")" "message $n: $size"
	done
}

@test "RETR streams the dot-stuffed message and ends with a lone dot" {
	run -0 _pop3_raw 'L:USER alice@example.test' R 'L:PASS alice-secret' R \
		'L:RETR 4' M 'L:QUIT' R
	assert_line -n 3 --regexp '^\+OK'
	# dots.eml has ".starts with one dot" and a lone "." line
	assert_line '..starts with one dot'
	assert_line '...starts with two dots'
	assert_line '..'
	assert_line -n -2 '.'
}

@test "TOP n 0 gives the headers and TOP n 2 two body lines" {
	local t=$BATS_TEST_TMPDIR
	run -0 _curl_retr alice@example.test alice-secret 4 "$t/full"
	run -0 _pop3 alice@example.test alice-secret "top:4:0:$t/top0" "top:4:2:$t/top2"
	"$PY" - "$t/full" "$t/top0" "$t/top2" <<'EOF'
import sys
full, top0, top2 = (open(p, "rb").read() for p in sys.argv[1:])
head, body = full.split(b"\r\n\r\n", 1)
want0 = head + b"\r\n\r\n"
want2 = want0 + b"".join(l + b"\r\n" for l in body.split(b"\r\n")[:2])
if top0 != want0:
    sys.exit("TOP 0: %r\nwanted %r" % (top0[-200:], want0[-200:]))
if top2 != want2:
    sys.exit("TOP 2: %r\nwanted %r" % (top2[-200:], want2[-200:]))
EOF
}

@test "UIDL lists unique ids of printable characters; UIDL n gives one" {
	run -0 _pop3 alice@example.test alice-secret uidl uidl:3
	local ids id
	ids=$(sed -n 1,4p <<<"$output" | cut -d' ' -f2)
	assert_equal "$(sort -u <<<"$ids" | wc -l)" 4
	for id in $ids; do
		[[ $id =~ ^[!-~]{1,70}$ ]] || fail "bad UIDL '$id'"
	done
	assert_line -n 4 "+OK 3 $(sed -n 3p <<<"$ids")"
}

@test "NOOP answers +OK in the transaction state" {
	run -0 _pop3_raw 'L:USER alice@example.test' R 'L:PASS alice-secret' R \
		'L:NOOP' R 'L:QUIT' R
	assert_line -n 3 --regexp '^\+OK'
}

@test "AUTH PLAIN with an initial response logs in" {
	run -0 _pop3_raw "L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:STAT' R 'L:QUIT' R
	assert_line -n 1 --regexp '^\+OK'
	assert_line -n 2 --regexp '^\+OK 4 '
}

@test "AUTH PLAIN with a continuation logs in" {
	run -0 _pop3_raw 'L:AUTH PLAIN' R \
		"L:$(_sasl_plain alice@example.test alice-secret)" R 'L:STAT' R 'L:QUIT' R
	assert_line -n 1 --regexp '^\+( |$)'
	assert_line -n 2 --regexp '^\+OK'
	assert_line -n 3 --regexp '^\+OK 4 '
}

@test "poplib logs in with AUTH PLAIN too" {
	run -0 _pop3 alice@example.test alice-secret --auth plain stat
	assert_line -n 0 --regexp '^4 [0-9]+$'
}

@test "AUTH PLAIN cancelled with * is -ERR and USER/PASS still works after" {
	run -0 _pop3_raw 'L:AUTH PLAIN' R 'L:*' R 'L:USER alice@example.test' R \
		'L:PASS alice-secret' R 'L:QUIT' R
	assert_line -n 1 --regexp '^\+( |$)'
	assert_line -n 2 --regexp '^-ERR'
	assert_line -n 3 --regexp '^\+OK'
	assert_line -n 4 --regexp '^\+OK'
}

@test "DELE marks, hides the message, RSET unmarks" {
	__fill dele@example.test 3
	run -0 _pop3_raw 'L:USER dele@example.test' R 'L:PASS dele-secret' R \
		'L:DELE 2' R 'L:STAT' R 'L:LIST' M 'L:RETR 2' R 'L:DELE 2' R \
		'L:RSET' R 'L:STAT' R 'L:QUIT' R
	assert_line -n 3 --regexp '^\+OK'
	assert_line -n 4 --regexp '^\+OK 2 '
	refute_line --regexp '^2 [0-9]+$'
	assert_line --regexp '^3 [0-9]+$'
	# RETR and DELE of a deleted message are errors
	assert_equal "$(grep -c '^-ERR' <<<"$output")" 2
	assert_line -n -3 --regexp '^\+OK'
	assert_line -n -2 --regexp '^\+OK 3 '
	# RSET then QUIT: nothing was deleted
	assert_equal "$(_count_new dele@example.test)" 3
}

@test "QUIT deletes the marked messages (UPDATE state)" {
	__fill quit@example.test 3
	run -0 _pop3 quit@example.test quit-secret uidl
	local gone
	gone=$(sed -n 1p <<<"$output" | cut -d' ' -f2)
	run -0 _pop3 quit@example.test quit-secret dele:1 dele:3
	assert_line -n 2 --regexp '^\+OK'
	local md
	md=$(_maildir_of quit@example.test)
	assert_equal "$(($(__count_files "$md/new") + $(__count_files "$md/cur")))" 1
	run -0 _pop3 quit@example.test quit-secret stat uidl
	assert_line -n 0 --regexp '^1 [0-9]+$'
	refute_output --partial "$gone"
}

@test "a dropped connection deletes nothing" {
	__fill drop@example.test 2
	run -0 _pop3 drop@example.test drop-secret --no-quit dele:1 dele:2
	# the daemon may take a moment to notice the close and free the lock
	_repeat_until_timeout 10 __can_login drop@example.test drop-secret
	run -0 _pop3 drop@example.test drop-secret stat
	assert_line -n 0 --regexp '^2 [0-9]+$'
	assert_equal "$(_count_new drop@example.test)" 2
}

@test "a second session on the same maildrop gets -ERR [IN-USE]" {
	__fill lock@example.test 1
	run -0 _pop3_raw 'L:USER lock@example.test' R 'L:PASS lock-secret' R \
		'@2' 'L:USER lock@example.test' R 'L:PASS lock-secret' R \
		'@1' 'L:QUIT' R E \
		'@3' 'L:USER lock@example.test' R 'L:PASS lock-secret' R 'L:QUIT' R
	assert_line -n 2 --regexp '^\+OK'
	assert_line -n 6 --regexp '^-ERR \[IN-USE\]'
	assert_line -n 8 --regexp '^\+OK'
	assert_line -n 9 '<EOF>'
	# after the first session quit, a new one gets in
	assert_line -n 13 --regexp '^\+OK'
}

@test "AUTH PLAIN on a locked maildrop gets -ERR [IN-USE] too" {
	__fill lock@example.test 1
	run -0 _pop3_raw 'L:USER lock@example.test' R 'L:PASS lock-secret' R \
		'@2' "L:AUTH PLAIN $(_sasl_plain lock@example.test lock-secret)" R
	assert_line -n 2 --regexp '^\+OK'
	assert_line -n 5 --regexp '^-ERR \[IN-USE\]'
}

@test "UIDLs stay the same across sessions, after RETR, and across a restart" {
	__fill uidl@example.test 3
	local t=$BATS_TEST_TMPDIR first second third
	run -0 _pop3 uidl@example.test uidl-secret uidl "retr:2:$t/m2"
	first=$(sed -n 1,3p <<<"$output")
	run -0 _pop3 uidl@example.test uidl-secret uidl
	second=$(sed -n 1,3p <<<"$output")
	assert_equal "$second" "$first"
	_daemon_restart
	run -0 _pop3 uidl@example.test uidl-secret uidl
	third=$(sed -n 1,3p <<<"$output")
	assert_equal "$third" "$first"
}

@test "QUIT in the authorization state just says goodbye" {
	run -0 _pop3_raw 'L:QUIT' R E
	assert_line -n 1 --regexp '^\+OK'
	assert_line -n 2 '<EOF>'
}

# Succeeds when a login and STAT work (the maildrop lock is free).
# @param $1 user
# @param $2 password
__can_login() {
	_pop3 "$1" "$2" stat >/dev/null 2>&1
}
