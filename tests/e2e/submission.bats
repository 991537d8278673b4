#!/usr/bin/env bats
# Message submission (RFC 6409) on the STARTTLS port ([submission], 587
# style) and the implicit-TLS port ([submissions], 465 style, RFC 8314):
# only authenticated users send, as an address they own (553 5.7.1
# otherwise); missing Date: and Message-ID: are added (RFC 6409 §8.2,
# §8.3); per-account limits on recipients (452 4.5.3) and messages per hour
# (451 4.7.1 and an alert in the log); trace header "ESMTPSA" (RFC 3848).
# Only local recipients here: the outbound queue is tested elsewhere.

load helpers/common
load helpers/daemon
load helpers/smtp

# The configuration of this file's daemon (the last test restarts it with
# a small hourly limit).
# @param (none)
__submission_config() {
	printf '%s\n' "tls.cert=$CERT" "tls.key=$KEY" \
		"submission.listen=127.0.0.1:$SUB_PORT" \
		"submissions.listen=127.0.0.1:$SUBS_PORT" \
		submission.max_recipients=2 auth.fail_delay=100
}

setup_file() {
	local ports
	ports=$(_free_ports 2)
	export SUB_PORT=${ports% *} SUBS_PORT=${ports#* }
	export CERT="$BATS_FILE_TMPDIR/cert.pem" KEY="$BATS_FILE_TMPDIR/key.pem"
	_tls_self_signed "$CERT" "$KEY"
	local -a cfg
	mapfile -t cfg < <(__submission_config)
	_daemon_setup_file "${cfg[@]}"
	_add_domain example.test
	_add_mailbox alice@example.test alice-secret
	_add_mailbox bob@example.test bob-secret
	_add_mailbox carol@example.test carol-secret
	_add_mailbox dave@example.test dave-secret
	_add_alias sales@example.test alice@example.test
	_add_alias team@example.test alice@example.test bob@example.test
	_add_alias billing@example.test bob@example.test
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

# A raw submission-port session over TLS, logged in as USER: the replies
# start 220 250 "220 2.0.0" 250 "235 2.7.0".
# @param $1 user
# @param $2 password
# @param $@ further steps
__sub_auth() {
	local user=$1 pass=$2
	shift 2
	_smtp_tls_raw "$SUB_PORT" 'L:EHLO client.test' R 'L:STARTTLS' R T \
		'L:EHLO client.test' R "L:AUTH PLAIN $(_sasl_plain "$user" "$pass")" R "$@"
}

# Submits one message as alice over TLS (raw), checking every reply.
# @param $1 recipient
# @param $2 message text for S: (escapes \r\n), without the final dot
# @param $@ steps before MAIL (e.g. a second EHLO)
__alice_submits() {
	local rcpt=$1 text=$2
	shift 2
	run -0 __sub_auth alice@example.test alice-secret "$@" \
		'L:MAIL FROM:<alice@example.test>' R "L:RCPT TO:<$rcpt>" R 'L:DATA' R \
		"S:$text.\r\n" R
	assert_equal "$(_reply_text -1 | cut -c1-9)" '250 2.0.0'
}

@test "an authenticated user delivers to a local mailbox; Received says ESMTPSA over TLS" {
	_clear_mailbox bob@example.test
	# Exit status: see smtp_starttls.bats, "QUIT over STARTTLS gets its 221".
	run _swaks_at "$SUB_PORT" --tls --auth PLAIN --auth-user alice@example.test \
		--auth-password alice-secret --from alice@example.test --to bob@example.test
	assert_output --partial '235 2.7.0'
	assert_output --partial '250 2.0.0 Ok: queued as'
	run -0 "$PY" "$TOOLS/msgtool.py" trace "$(_only_mail bob@example.test)"
	assert_output --regexp 'with ESMTPSA id [0-9a-f]{16}'
	assert_output --regexp '\(using TLSv1\.3:TLS_[A-Z0-9_]+\)'
	assert_output --partial 'Return-Path: <alice@example.test>'
}

@test "MAIL FROM another user's address is 553 5.7.1" {
	run -0 __sub_auth alice@example.test alice-secret \
		'L:MAIL FROM:<bob@example.test>' R 'L:RCPT TO:<bob@example.test>' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '553 5.7.1' '503 5.5.1'
}

@test "MAIL FROM an address nobody owns (local or foreign) is 553 5.7.1" {
	run -0 __sub_auth alice@example.test alice-secret \
		'L:MAIL FROM:<nobody@example.test>' R 'L:MAIL FROM:<alice@remote.test>' R \
		'L:MAIL FROM:<alice@example.test>' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '553 5.7.1' '553 5.7.1' \
		'250 2.1.0'
}

@test "MAIL FROM an alias of another user is 553 5.7.1" {
	run -0 __sub_auth alice@example.test alice-secret 'L:MAIL FROM:<billing@example.test>' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '553 5.7.1'
}

@test "MAIL FROM an alias that delivers to the user is accepted, and the message goes through" {
	_clear_mailbox bob@example.test
	run -0 __sub_auth alice@example.test alice-secret \
		'L:MAIL FROM:<sales@example.test>' R 'L:RSET' R \
		'L:MAIL FROM:<team@example.test>' R 'L:RCPT TO:<bob@example.test>' R \
		'L:DATA' R 'S:Subject: from an alias\r\n\r\nbody\r\n.\r\n' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '250 2.1.0' '250 2.0.0' \
		'250 2.1.0' '250 2.1.5' 354 '250 2.0.0'
	assert_equal "$(_count_new bob@example.test)" 1
	run -0 "$PY" "$TOOLS/msgtool.py" trace "$(_only_mail bob@example.test)"
	assert_output --partial 'Return-Path: <team@example.test>'
}

@test "the sender check ignores the case of the address" {
	run -0 __sub_auth alice@example.test alice-secret \
		'L:MAIL FROM:<Alice@Example.TEST>' R 'L:MAIL FROM:<SALES@example.test>' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '250 2.1.0' '503 5.5.1'
}

@test "a message without Date: and Message-ID: gets both" {
	_clear_mailbox bob@example.test
	__alice_submits bob@example.test \
		'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: bare\r\n\r\nbody line\r\nDate: in the body\r\n'
	local file
	file=$(_only_mail bob@example.test)
	run -0 _mail_headers "$file"
	assert_equal "$(grep -c -i '^Date:' <<<"$output")" 1
	assert_equal "$(grep -c -i '^Message-ID:' <<<"$output")" 1
	# RFC 5322 §3.3 date-time and §3.6.4 msg-id.
	assert_line --regexp '^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}$'
	assert_line --regexp '^Message-ID: <[^<>@ ]+@mx\.example\.test>$'
	assert_line 'Subject: bare'
	# The body is untouched.
	run -0 sed -e 's/\r$//' -e '1,/^$/d' "$file"
	assert_output $'body line\nDate: in the body'
}

@test "a message with Date: and Message-ID: keeps them unchanged" {
	_clear_mailbox bob@example.test
	__alice_submits bob@example.test \
		'Date: Tue, 1 Jan 2030 10:00:00 +0100\r\nMessage-ID: <keep-me@client.test>\r\nSubject: dated\r\n\r\nbody\r\n'
	run -0 _mail_headers "$(_only_mail bob@example.test)"
	assert_equal "$(grep -c -i '^Date:' <<<"$output")" 1
	assert_equal "$(grep -c -i '^Message-ID:' <<<"$output")" 1
	assert_line 'Date: Tue, 1 Jan 2030 10:00:00 +0100'
	assert_line 'Message-ID: <keep-me@client.test>'
}

@test "only the missing one is added; header names are case-insensitive" {
	_clear_mailbox bob@example.test
	__alice_submits bob@example.test \
		'DATE: Tue, 1 Jan 2030 10:00:00 +0100\r\nSubject: no id\r\n\r\nbody\r\n'
	run -0 _mail_headers "$(_only_mail bob@example.test)"
	assert_equal "$(grep -c -i '^Date:' <<<"$output")" 1
	assert_line 'DATE: Tue, 1 Jan 2030 10:00:00 +0100'
	assert_line --regexp '^Message-ID: <[^<>@ ]+@mx\.example\.test>$'

	_clear_mailbox bob@example.test
	__alice_submits bob@example.test \
		'message-id: <lower@client.test>\r\nSubject: no date\r\n\r\nbody\r\n'
	run -0 _mail_headers "$(_only_mail bob@example.test)"
	assert_equal "$(grep -c -i '^Message-ID:' <<<"$output")" 1
	assert_line 'message-id: <lower@client.test>'
	assert_equal "$(grep -c -i '^Date:' <<<"$output")" 1
}

@test "a message sent with BDAT gets Date: and Message-ID: too" {
	_clear_mailbox bob@example.test
	run -0 __sub_auth alice@example.test alice-secret \
		'L:MAIL FROM:<alice@example.test>' R 'L:RCPT TO:<bob@example.test>' R \
		'B:Subject: chunked\r\n' R 'BL:\r\nbody\r\n' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '250 2.1.0' '250 2.1.5' \
		'250 2.0.0' '250 2.0.0'
	run -0 _mail_headers "$(_only_mail bob@example.test)"
	assert_equal "$(grep -c -i '^Date:' <<<"$output")" 1
	assert_equal "$(grep -c -i '^Message-ID:' <<<"$output")" 1
	assert_line 'Subject: chunked'
}

@test "Date: and Message-ID: are added even after a long EHLO name" {
	# A 250-octet host name makes the trace header long; the added headers
	# must still fit.
	local helo
	helo="$(_repeat_char 62 a).$(_repeat_char 62 b).$(_repeat_char 62 c).$(_repeat_char 59 d).test"
	_clear_mailbox bob@example.test
	__alice_submits bob@example.test 'Subject: long helo\r\n\r\nbody\r\n' \
		"L:EHLO $helo" R
	run -0 _mail_headers "$(_only_mail bob@example.test)"
	assert_equal "$(grep -c -i '^Date:' <<<"$output")" 1
	assert_equal "$(grep -c -i '^Message-ID:' <<<"$output")" 1
}

@test "mail received on the MX port is not given Date: or Message-ID:" {
	_clear_mailbox bob@example.test
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R 'L:RCPT TO:<bob@example.test>' R \
		'L:DATA' R 'S:Subject: from outside\r\n\r\nbody\r\n.\r\n' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '250 2.0.0' '221 2.0.0'
	run -0 _mail_headers "$(_only_mail bob@example.test)"
	refute_line --regexp '^(Date|Message-ID):'
}

@test "max_recipients = 2: the third RCPT is 452 4.5.3 and the message goes to two" {
	_clear_mailbox bob@example.test
	_clear_mailbox carol@example.test
	_clear_mailbox dave@example.test
	run -0 __sub_auth alice@example.test alice-secret \
		'L:MAIL FROM:<alice@example.test>' R 'L:RCPT TO:<bob@example.test>' R \
		'L:RCPT TO:<carol@example.test>' R 'L:RCPT TO:<dave@example.test>' R \
		'L:DATA' R 'S:Subject: three\r\n\r\nbody\r\n.\r\n' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '250 2.1.0' '250 2.1.5' \
		'250 2.1.5' '452 4.5.3' 354 '250 2.0.0'
	assert_equal "$(_count_new bob@example.test)" 1
	assert_equal "$(_count_new carol@example.test)" 1
	assert_equal "$(_count_new dave@example.test)" 0
}

@test "the submission recipient limit does not apply on the MX port" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R 'L:RCPT TO:<bob@example.test>' R \
		'L:RCPT TO:<carol@example.test>' R 'L:RCPT TO:<dave@example.test>' R 'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.1.5' '250 2.1.5' '221 2.0.0'
}

@test "Thunderbird style: smtplib STARTTLS + login + sendmail on the submission port" {
	_clear_mailbox bob@example.test
	run -0 "$PY" "$TOOLS/smtps_send.py" --port "$SUB_PORT" --starttls \
		--user alice@example.test --password alice-secret \
		--from alice@example.test --to bob@example.test --subject 'via starttls'
	# How QUIT ends is not checked here: see smtp_starttls.bats, "QUIT over
	# STARTTLS gets its 221".
	assert_line --regexp '^login: 235 2\.7\.0'
	assert_line 'sent: ok'
	assert_equal "$(_count_new bob@example.test)" 1
}

@test "implicit TLS port: smtplib.SMTP_SSL login + sendmail" {
	_clear_mailbox bob@example.test
	run -0 "$PY" "$TOOLS/smtps_send.py" --port "$SUBS_PORT" --implicit \
		--user alice@example.test --password alice-secret \
		--from alice@example.test --to bob@example.test --subject 'via smtps'
	assert_line --regexp '^login: 235 2\.7\.0'
	assert_line 'sent: ok'
	assert_line --regexp '^quit: 221 2\.0\.0'
	local file
	file=$(_only_mail bob@example.test)
	run -0 "$PY" "$TOOLS/msgtool.py" trace "$file"
	assert_output --regexp 'with ESMTPSA id '
	assert_output --partial '(using TLSv1.3:'
	run -0 _mail_headers "$file"
	assert_line 'Subject: via smtps'
}

@test "implicit TLS port: swaks --tlsc sends" {
	_clear_mailbox bob@example.test
	run -0 _swaks_at "$SUBS_PORT" --tlsc --auth LOGIN --auth-user alice@example.test \
		--auth-password alice-secret --from alice@example.test --to bob@example.test
	assert_output --partial '235 2.7.0'
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_output --partial '221 2.0.0'
	assert_equal "$(_count_new bob@example.test)" 1
}

@test "implicit TLS port: the sender check applies there too" {
	run -0 _smtp_tls_raw "$SUBS_PORT" --tls 'L:EHLO client.test' R \
		'L:MAIL FROM:<alice@example.test>' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:MAIL FROM:<bob@example.test>' R 'L:QUIT' R E
	_assert_replies 220 250 '530 5.7.0' '235 2.7.0' '553 5.7.1' '221 2.0.0' '<EOF>'
}

@test "implicit TLS port: a plaintext client gets no SMTP dialogue" {
	run _smtp_raw --port "$SUBS_PORT" --no-greeting --timeout 10 \
		'L:EHLO client.test' E
	refute_line --regexp '^(220|250)'
	# swaks waits for a greeting that never comes in clear.
	run swaks --server 127.0.0.1 --port "$SUBS_PORT" --timeout 5 \
		--from alice@example.test --to bob@example.test
	assert_failure
	refute_output --partial '250 2.0.0'
}

@test "max_messages_per_hour = 2: the third MAIL is 451 4.7.1 with an alert in the log" {
	local -a cfg
	mapfile -t cfg < <(__submission_config)
	_daemon_stop
	_daemon_write_config "${cfg[@]}" submission.max_messages_per_hour=2
	_daemon_start
	_test_setup
	_clear_mailbox bob@example.test

	local i
	for i in 1 2; do
		__alice_submits bob@example.test "Subject: rate $i\r\n\r\nbody\r\n"
	done
	assert_equal "$(_count_new bob@example.test)" 2
	run -0 __sub_auth alice@example.test alice-secret \
		'L:MAIL FROM:<alice@example.test>' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '451 4.7.1'
	run -0 _log_since_test_start
	assert_output --regexp 'alert.*alice@example\.test'

	# The limit is per account: another user still sends.
	run -0 __sub_auth carol@example.test carol-secret \
		'L:MAIL FROM:<carol@example.test>' R
	_assert_replies 220 250 '220 2.0.0' 250 '235 2.7.0' '250 2.1.0'
}
