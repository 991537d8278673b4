#!/usr/bin/env bats
# POP3 error paths: failed logins (-ERR [AUTH], delayed, kept out of the
# log), APOP not offered, commands in the wrong state, bad arguments, the
# command line limit, too many bad commands, and user names that try to
# name a path outside the store.

load helpers/common
load helpers/daemon
load helpers/smtp
load helpers/pop3

setup_file() {
	_daemon_setup_file pop3.max_command_line=255 pop3.max_bad_commands=3 \
		pop3.auth_fail_delay=100
	_add_domain example.test
	_add_mailbox alice@example.test alice-secret
	_add_mailbox bob@example.test bob-secret
	_smtp_send_text sender@remote.test alice@example.test "one" >/dev/null
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

@test "a wrong password is -ERR [AUTH]" {
	run -0 _pop3_raw 'L:USER alice@example.test' R 'L:PASS wrong-password' R 'L:QUIT' R
	assert_line -n 2 --regexp '^-ERR \[AUTH\]'
}

@test "an unknown user gets the same -ERR [AUTH] at PASS" {
	run -0 _pop3_raw 'L:USER nobody@example.test' R 'L:PASS whatever' R 'L:QUIT' R
	assert_output --regexp $'(^|\n)-ERR \\[AUTH\\]'
	refute_line -n 2 --regexp '^\+OK'
}

@test "a wrong password with AUTH PLAIN is -ERR [AUTH]" {
	run -0 _pop3_raw "L:AUTH PLAIN $(_sasl_plain alice@example.test wrong-password)" R 'L:QUIT' R
	assert_line -n 1 --regexp '^-ERR \[AUTH\]'
}

@test "AUTH PLAIN with an authorization identity of another user is refused" {
	local tok
	tok=$(printf '%s\0%s\0%s' bob@example.test alice@example.test alice-secret | base64 -w0)
	run -0 _pop3_raw "L:AUTH PLAIN $tok" R 'L:QUIT' R
	assert_line -n 1 --regexp '^-ERR'
}

@test "AUTH PLAIN with bad base64 is -ERR" {
	run -0 _pop3_raw 'L:AUTH PLAIN !!!not-base64!!!' R 'L:QUIT' R
	assert_line -n 1 --regexp '^-ERR'
}

@test "AUTH with an unsupported mechanism is -ERR" {
	run -0 _pop3_raw 'L:AUTH CRAM-MD5' R 'L:QUIT' R
	assert_line -n 1 --regexp '^-ERR'
}

@test "passwords and AUTH data never reach the log" {
	local tok
	tok=$(_sasl_plain alice@example.test alice-secret)
	run -0 _pop3_raw 'L:USER alice@example.test' R 'L:PASS wrong-password' R 'L:QUIT' R
	run -0 _pop3_raw 'L:USER alice@example.test' R 'L:PASS alice-secret' R 'L:QUIT' R
	run -0 _pop3_raw "L:AUTH PLAIN $tok" R 'L:QUIT' R
	run grep -F -e wrong-password -e alice-secret -e "$tok" "$DAEMON_LOG"
	assert_failure
}

@test "APOP is not offered and is refused" {
	run -0 _pop3_raw 'L:APOP alice@example.test 0123456789abcdef0123456789abcdef' R 'L:QUIT' R
	refute_line -n 0 --regexp '<[^>]*@[^>]*>'
	assert_line -n 1 --regexp '^-ERR'
}

@test "transaction commands before login are -ERR" {
	run -0 _pop3_raw 'L:STAT' R 'L:LIST' R 'L:QUIT' R
	assert_line -n 1 --regexp '^-ERR'
	assert_line -n 2 --regexp '^-ERR'
	assert_line -n 3 --regexp '^\+OK'
	run -0 _pop3_raw 'L:RETR 1' R 'L:QUIT' R
	assert_line -n 1 --regexp '^-ERR'
	run -0 _pop3_raw 'L:DELE 1' R 'L:QUIT' R
	assert_line -n 1 --regexp '^-ERR'
}

@test "PASS without USER is -ERR" {
	run -0 _pop3_raw 'L:PASS alice-secret' R 'L:QUIT' R
	assert_line -n 1 --regexp '^-ERR'
}

@test "an unknown command is -ERR" {
	run -0 _pop3_raw 'L:FROB' R 'L:QUIT' R
	assert_line -n 1 --regexp '^-ERR'
	assert_line -n 2 --regexp '^\+OK'
}

@test "USER and PASS are refused after login" {
	run -0 _pop3_raw 'L:USER alice@example.test' R 'L:PASS alice-secret' R \
		'L:USER bob@example.test' R 'L:QUIT' R
	assert_line -n 3 --regexp '^-ERR'
}

@test "bad message numbers and arguments are -ERR" {
	local group
	# two at a time, well under max_bad_commands (3)
	for group in 'RETR 99|RETR 0' 'RETR abc|RETR' 'LIST 99|DELE 99' \
		'TOP 1|TOP 99 0' 'UIDL 99|RETR -1' 'TOP 1 -1|TOP 1 x'; do
		local steps=('L:USER alice@example.test' R 'L:PASS alice-secret' R) cmd
		IFS='|' read -r -a cmds <<<"$group"
		for cmd in "${cmds[@]}"; do steps+=("L:$cmd" R); done
		steps+=('L:STAT' R 'L:QUIT' R)
		run -0 _pop3_raw "${steps[@]}"
		assert_line -n 2 --regexp '^\+OK'
		assert_line -n 3 --regexp '^-ERR'
		assert_line -n 4 --regexp '^-ERR'
		assert_line -n 5 --regexp '^\+OK 1 '
		assert_line -n 6 --regexp '^\+OK'
	done
}

@test "a command line longer than the limit is -ERR" {
	run _pop3_raw "L:USER $(_repeat_char 300)@example.test" R
	assert_line -n 1 --regexp '^-ERR'
}

@test "too many bad commands end the session" {
	run -0 _pop3_raw 'S:BAD1\r\nBAD2\r\nBAD3\r\nBAD4\r\nBAD5\r\nBAD6\r\n' E
	assert_line -n 1 --regexp '^-ERR'
	assert_line -n -1 '<EOF>'
	local n
	n=$(grep -c '^-ERR' <<<"$output")
	((n >= 3 && n <= 5)) || fail "expected the session to end after 3 bad commands, saw $n -ERR"
}

@test "exactly max_bad_commands bad commands are tolerated" {
	# max_bad_commands = 3 here: three errors, then the session goes on
	run -0 _pop3_raw 'L:BAD' R 'L:BAD' R 'L:BAD' R 'L:CAPA' M 'L:QUIT' R
	assert_line -n 1 --regexp '^-ERR'
	assert_line -n 2 --regexp '^-ERR'
	assert_line -n 3 --regexp '^-ERR'
	assert_line -n 4 --regexp '^\+OK'
	assert_line -n -1 --regexp '^\+OK'
}

@test "a user name with ../ can never name a path outside the store" {
	local name
	for name in '../../../../etc' '../alice@example.test' 'alice@../example.test' \
		'alice@example.test/../../x' '../example.test/alice' 'alice/../bob@example.test' \
		'..@example.test' '.@example.test' 'alice@..'; do
		run -0 _pop3_raw "L:USER $name" R 'L:PASS alice-secret' R 'L:QUIT' R
		refute_line -n 2 --regexp '^\+OK'
		run -0 _pop3_raw "L:AUTH PLAIN $(_sasl_plain "$name" alice-secret)" R 'L:QUIT' R
		refute_line -n 1 --regexp '^\+OK'
	done
	# no maildir was made outside the real mailboxes
	run find "$BATS_FILE_TMPDIR" -name 'new' -type d -not -path "$DATA_DIR/mail/example.test/*"
	assert_output ''
	run find "$DATA_DIR" -maxdepth 3 -path "$DATA_DIR/mail/*" -type d
	refute_output --partial '..'
}

@test "after all failed logins a good login still works" {
	run -0 _pop3 alice@example.test alice-secret stat
	assert_line -n 0 --regexp '^1 [0-9]+$'
}
