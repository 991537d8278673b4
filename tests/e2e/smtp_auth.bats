#!/usr/bin/env bats
# SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN: only over TLS on the
# submission port (RFC 6409, 3207 §4) and on the implicit-TLS port (RFC
# 8314), on the MX port only when [smtp] auth = yes; malformed base64 and
# "*" give 501, bad credentials 535 5.7.8 with an abuse report, a second
# AUTH 503; [auth] plaintext_on_loopback = yes allows AUTH in clear from
# 127.0.0.1, and STARTTLS forgets that login.

load helpers/common
load helpers/daemon
load helpers/smtp

# The configuration of this file's daemon (the last test restarts it with
# one more setting).
# @param (none)
__auth_config() {
	printf '%s\n' "tls.cert=$CERT" "tls.key=$KEY" \
		"submission.listen=127.0.0.1:$SUB_PORT" \
		"submissions.listen=127.0.0.1:$SUBS_PORT" \
		smtp.auth=yes auth.fail_delay=100 smtp.max_bad_commands=50
}

setup_file() {
	local ports
	ports=$(_free_ports 2)
	export SUB_PORT=${ports% *} SUBS_PORT=${ports#* }
	export CERT="$BATS_FILE_TMPDIR/cert.pem" KEY="$BATS_FILE_TMPDIR/key.pem"
	_tls_self_signed "$CERT" "$KEY"
	local -a cfg
	mapfile -t cfg < <(__auth_config)
	_daemon_setup_file "${cfg[@]}"
	_add_domain example.test
	_add_mailbox alice@example.test alice-secret
	_add_mailbox bob@example.test 'b0b pass wörd'
	_add_mailbox dora@example.test dora-secret
	_ctl mailbox disable dora@example.test
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

# A raw session on the submission port (see _smtp_tls_raw).
# @param $@ steps
__sub() {
	_smtp_tls_raw "$SUB_PORT" "$@"
}

# A raw session on the submission port that has done EHLO, STARTTLS and
# EHLO again: the replies start 220 250 "220 2.0.0" 250.
# @param $@ further steps
__sub_tls() {
	__sub 'L:EHLO client.test' R 'L:STARTTLS' R T 'L:EHLO client.test' R "$@"
}

@test "submission: EHLO before TLS offers STARTTLS but not AUTH" {
	run -0 __sub 'L:EHLO client.test' R 'L:QUIT' R
	assert_line --regexp '^250[- ]STARTTLS$'
	refute_line --regexp '^250[- ]AUTH'
	_assert_replies 220 250 '221 2.0.0'
}

@test "submission: AUTH before TLS is 530 5.7.0" {
	run -0 __sub 'L:EHLO client.test' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:AUTH LOGIN' R 'L:QUIT' R
	_assert_replies 220 250 '530 5.7.0' '530 5.7.0' '221 2.0.0'
}

@test "submission: MAIL before AUTH is 530 5.7.0, in clear and over TLS" {
	run -0 __sub 'L:EHLO client.test' R 'L:MAIL FROM:<alice@example.test>' R \
		'L:STARTTLS' R T 'L:EHLO client.test' R \
		'L:MAIL FROM:<alice@example.test>' R 'L:RCPT TO:<bob@example.test>' R
	_assert_replies 220 250 '530 5.7.0' '220 2.0.0' 250 '530 5.7.0' '503 5.5.1'
}

@test "submission: after STARTTLS, EHLO offers AUTH PLAIN LOGIN (and no STARTTLS)" {
	run -0 __sub_tls 'L:NOOP' R
	assert_line --regexp '^250-AUTH PLAIN LOGIN$'
	assert_equal "$(grep -c -E '^250[- ]STARTTLS$' <<<"$output")" 1
}

@test "swaks --tls --auth PLAIN authenticates (235 2.7.0) and sends" {
	_clear_mailbox bob@example.test
	# The exit status is not checked: see smtp_starttls.bats, "QUIT over
	# STARTTLS gets its 221".
	run _swaks_at "$SUB_PORT" --tls --auth PLAIN --auth-user alice@example.test \
		--auth-password alice-secret --from alice@example.test --to bob@example.test
	assert_output --partial '235 2.7.0'
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new bob@example.test)" 1
}

@test "swaks --tls --auth LOGIN authenticates (235 2.7.0) and sends" {
	_clear_mailbox alice@example.test
	run _swaks_at "$SUB_PORT" --tls --auth LOGIN --auth-user bob@example.test \
		--auth-password 'b0b pass wörd' --from bob@example.test --to alice@example.test
	assert_output --partial '235 2.7.0'
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new alice@example.test)" 1
}

@test "AUTH PLAIN with an initial response, then MAIL is accepted" {
	run -0 __sub_tls "L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:MAIL FROM:<alice@example.test>' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '250 2.1.0'
}

@test "MAIL accepts the AUTH= parameter of RFC 4954 §5" {
	run -0 __sub_tls "L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:MAIL FROM:<alice@example.test> AUTH=<>' R 'L:RSET' R \
		'L:MAIL FROM:<alice@example.test> AUTH=alice@example.test' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '250 2.1.0' '250 2.0.0' \
		'250 2.1.0'
}

@test "AUTH PLAIN without an initial response: empty 334, then the response" {
	run -0 __sub_tls 'L:AUTH PLAIN' R \
		"L:$(_sasl_plain alice@example.test alice-secret)" R
	_assert_replies 220 250 '220 2.0.0' 250 334 '235 2.7.0'
	assert_line '334 '
}

@test "AUTH LOGIN asks Username: then Password: (base64)" {
	run -0 __sub_tls 'L:AUTH LOGIN' R "L:$(_b64 alice@example.test)" R \
		"L:$(_b64 alice-secret)" R 'L:MAIL FROM:<alice@example.test>' R
	_assert_replies 220 250 '220 2.0.0' 250 334 334 '235 2.7.0' '250 2.1.0'
	assert_line '334 VXNlcm5hbWU6'
	assert_line '334 UGFzc3dvcmQ6'
}

@test "AUTH LOGIN with the user name as initial response asks only for the password" {
	run -0 __sub_tls "L:AUTH LOGIN $(_b64 alice@example.test)" R \
		"L:$(_b64 alice-secret)" R
	_assert_replies 220 250 '220 2.0.0' 250 334 '235 2.7.0'
	assert_line '334 UGFzc3dvcmQ6'
}

@test "the user name is case-insensitive" {
	run -0 __sub_tls "L:AUTH PLAIN $(_sasl_plain Alice@EXAMPLE.test alice-secret)" R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0'
}

@test "a wrong password is 535 5.7.8, reported as abuse, and MAIL stays refused" {
	run -0 __sub_tls "L:AUTH PLAIN $(_sasl_plain alice@example.test wrong)" R \
		'L:MAIL FROM:<alice@example.test>' R
	_assert_replies 220 250 '220 2.0.0' 250 '535 5.7.8' '530 5.7.0'
	run -0 _log_since_test_start
	assert_output --regexp 'abuse kind=auth-failure addr=127\.0\.0\.1 account=alice@example\.test'
}

@test "a wrong password over AUTH LOGIN is 535 5.7.8 too" {
	run -0 __sub_tls 'L:AUTH LOGIN' R "L:$(_b64 alice@example.test)" R \
		"L:$(_b64 nope)" R
	_assert_replies 220 250 '220 2.0.0' 250 334 334 '535 5.7.8'
}

@test "an unknown user is 535 5.7.8 as well, and reported" {
	run -0 __sub_tls "L:AUTH PLAIN $(_sasl_plain nobody@example.test whatever)" R
	_assert_replies 220 250 '220 2.0.0' 250 '535 5.7.8'
	run -0 _log_since_test_start
	assert_output --partial 'abuse kind=auth-failure'
}

@test "clients that leave during the check or the failure delay do not upset the daemon" {
	local pause
	for pause in 0 0.02 0.05 0.08 0.11 0.15 0.2; do
		run _smtp_tls_raw "$SUB_PORT" 'L:EHLO client.test' R 'L:STARTTLS' R T \
			'L:EHLO client.test' R "L:AUTH PLAIN $(_sasl_plain alice@example.test wrong)" \
			"P:$pause" X
		run -0 _smtp_tls_raw "$SUB_PORT" 'L:EHLO client.test' R 'L:STARTTLS' R T \
			'L:EHLO client.test' R "L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" \
			"P:$pause" X
	done
	sleep 0.3
	kill -0 "$(_daemon_pid)"
	run -0 __sub_tls "L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0'
}

@test "a disabled mailbox cannot authenticate (535 5.7.8)" {
	run -0 __sub_tls "L:AUTH PLAIN $(_sasl_plain dora@example.test dora-secret)" R
	_assert_replies 220 250 '220 2.0.0' 250 '535 5.7.8'
}

@test "after a failed AUTH the client may try again and succeed" {
	run -0 __sub_tls "L:AUTH PLAIN $(_sasl_plain alice@example.test wrong)" R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R
	_assert_replies 220 250 '220 2.0.0' 250 '535 5.7.8' '235 2.7.0'
}

@test "AUTH PLAIN with malformed base64 is 501 5.5.2 (initial response and continuation)" {
	run -0 __sub_tls 'L:AUTH PLAIN !!!not-base64!!!' R \
		'L:AUTH PLAIN AGFsaWNl=ZQ' R 'L:AUTH PLAIN' R 'L:%%%%' R 'L:NOOP' R
	_assert_replies 220 250 '220 2.0.0' 250 '501 5.5.2' '501 5.5.2' 334 \
		'501 5.5.2' '250 2.0.0'
}

@test "AUTH PLAIN that decodes to a malformed message is 501 5.5.2" {
	# No NUL separators at all; and an empty password.
	run -0 __sub_tls "L:AUTH PLAIN $(_b64 alice@example.test)" R \
		"L:AUTH PLAIN $(printf '\0alice@example.test\0' | base64 -w0)" R
	_assert_replies 220 250 '220 2.0.0' 250 '501 5.5.2' '501 5.5.2'
}

@test "AUTH LOGIN with malformed base64 is 501 5.5.2" {
	run -0 __sub_tls 'L:AUTH LOGIN' R 'L:###' R 'L:NOOP' R
	_assert_replies 220 250 '220 2.0.0' 250 334 '501 5.5.2' '250 2.0.0'
}

@test "\"*\" cancels an AUTH exchange with 501; the session goes on" {
	run -0 __sub_tls 'L:AUTH PLAIN' R 'L:*' R 'L:AUTH LOGIN' R 'L:*' R \
		'L:AUTH LOGIN' R "L:$(_b64 alice@example.test)" R 'L:*' R \
		'L:MAIL FROM:<alice@example.test>' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R
	_assert_replies 220 250 '220 2.0.0' 250 334 '501 5.7.0' 334 '501 5.7.0' 334 334 \
		'501 5.7.0' '530 5.7.0' '235 2.7.0'
}

@test "a second AUTH after success is 503" {
	run -0 __sub_tls "L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		"L:AUTH PLAIN $(_sasl_plain bob@example.test 'b0b pass wörd')" R \
		'L:AUTH LOGIN' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '503 5.5.1' '503 5.5.1'
}

@test "an unknown mechanism is 504" {
	run -0 __sub_tls 'L:AUTH CRAM-MD5' R 'L:AUTH' R 'L:NOOP' R
	assert_regex "$(_replies | sed -n 5p)" '^504( 5\.5\.4)?$'
	assert_regex "$(_replies | sed -n 6p)" '^50[14]'
	assert_regex "$(_replies | sed -n 7p)" '^250 2\.0\.0$'
}

@test "AUTH before EHLO is 503 5.5.1" {
	run -0 __sub 'L:STARTTLS' R T \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R
	_assert_replies 220 '220 2.0.0' '503 5.5.1'
}

@test "passwords never reach the log" {
	run -0 __sub_tls "L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R
	run -0 __sub_tls 'L:AUTH LOGIN' R "L:$(_b64 bob@example.test)" R \
		"L:$(_b64 'b0b pass wörd')" R
	run grep -c -e 'alice-secret' -e 'b0b pass' -e "$(_b64 'b0b pass wörd')" \
		-e "$(_sasl_plain alice@example.test alice-secret)" "$DAEMON_LOG"
	assert_output 0
}

@test "implicit TLS port: AUTH offered on the first EHLO and accepted" {
	run -0 _smtp_tls_raw "$SUBS_PORT" --tls 'L:EHLO client.test' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:MAIL FROM:<alice@example.test>' R
	assert_line --regexp '^<TLS TLSv1\.3 '
	assert_line --regexp '^250-AUTH PLAIN LOGIN$'
	refute_line --regexp '^250[- ]STARTTLS$'
	_assert_replies 220 250 '235 2.7.0' '250 2.1.0'
}

@test "implicit TLS port: STARTTLS is not offered and is 503 5.5.1" {
	run -0 _smtp_tls_raw "$SUBS_PORT" --tls 'L:EHLO client.test' R 'L:STARTTLS' R \
		'L:NOOP' R
	refute_line --regexp '^250[- ]STARTTLS$'
	_assert_replies 220 250 '503 5.5.1' '250 2.0.0'
}

@test "MX port with [smtp] auth = yes: AUTH only after STARTTLS" {
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:STARTTLS' R T 'L:EHLO client.test' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R
	_assert_replies 220 250 '530 5.7.0' '220 2.0.0' 250 '235 2.7.0'
	# AUTH appears in the second EHLO reply only.
	assert_equal "$(grep -c -E '^250-AUTH PLAIN LOGIN$' <<<"$output")" 1
	assert_regex "$(sed -n '/^<TLS/,$p' <<<"$output" | grep -E '^250-AUTH')" 'AUTH PLAIN LOGIN'
}

@test "MX port: authenticated mail is stamped ESMTPSA" {
	_clear_mailbox bob@example.test
	run _swaks --tls --auth PLAIN --auth-user alice@example.test \
		--auth-password alice-secret --from alice@example.test --to bob@example.test
	assert_output --partial '235 2.7.0'
	assert_output --partial '250 2.0.0 Ok: queued as'
	run -0 "$PY" "$TOOLS/msgtool.py" trace "$(_only_mail bob@example.test)"
	assert_output --regexp 'with ESMTPSA id '
}

@test "plaintext_on_loopback = yes: AUTH offered and accepted in clear on 127.0.0.1; STARTTLS forgets it" {
	local -a cfg
	mapfile -t cfg < <(__auth_config)
	_daemon_stop
	_daemon_write_config "${cfg[@]}" auth.plaintext_on_loopback=yes
	_daemon_start
	_clear_mailbox bob@example.test

	run -0 __sub 'L:EHLO client.test' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:MAIL FROM:<alice@example.test>' R 'L:RCPT TO:<bob@example.test>' R \
		'L:DATA' R 'S:Subject: in clear\r\n\r\nbody\r\n.\r\n' R 'L:QUIT' R E
	assert_line --regexp '^250-AUTH PLAIN LOGIN$'
	_assert_replies 220 250 '235 2.7.0' '250 2.1.0' '250 2.1.5' 354 '250 2.0.0' \
		'221 2.0.0' '<EOF>'
	assert_equal "$(_count_new bob@example.test)" 1
	run -0 "$PY" "$TOOLS/msgtool.py" trace "$(_only_mail bob@example.test)"
	assert_output --regexp 'with ESMTPA id '

	run -0 __sub 'L:EHLO client.test' R 'L:AUTH LOGIN' R \
		"L:$(_b64 alice@example.test)" R "L:$(_b64 alice-secret)" R
	_assert_replies 220 250 334 334 '235 2.7.0'

	# RFC 3207 §4.2: after STARTTLS the earlier login is forgotten.
	run -0 __sub 'L:EHLO client.test' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:STARTTLS' R T 'L:EHLO client.test' R 'L:MAIL FROM:<alice@example.test>' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:MAIL FROM:<alice@example.test>' R
	_assert_replies 220 250 '235 2.7.0' '220 2.0.0' 250 '530 5.7.0' '235 2.7.0' \
		'250 2.1.0'

	# The MX port follows the same rule ([smtp] auth = yes here).
	run -0 _smtp_raw 'L:EHLO client.test' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R 'L:QUIT' R
	_assert_replies 220 250 '235 2.7.0' '221 2.0.0'
}
