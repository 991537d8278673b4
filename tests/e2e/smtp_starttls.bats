#!/usr/bin/env bats
# STARTTLS on the MX port (RFC 3207): advertised when [tls] has a
# certificate, 220 2.0.0 then the handshake, state forgotten afterwards,
# pipelined plaintext after STARTTLS discarded (CVE-2011-0411), TLS 1.2
# minimum (RFC 8996), the TLS version and cipher in the Received header
# (RFC 3848 "ESMTPS"), certificate reload on SIGHUP. AUTH is not offered on
# the MX port here ([smtp] auth defaults to no).

load helpers/common
load helpers/daemon
load helpers/smtp

setup_file() {
	export CERT="$BATS_FILE_TMPDIR/cert.pem" KEY="$BATS_FILE_TMPDIR/key.pem"
	_tls_self_signed "$CERT" "$KEY"
	_daemon_setup_file "tls.cert=$CERT" "tls.key=$KEY" auth.fail_delay=100
	_add_domain example.test
	_add_mailbox alice@example.test alice-secret
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

# Reads the stored message's Received header (with its continuation lines).
# @param $1 message file
__received_of() {
	"$PY" "$TOOLS/msgtool.py" trace "$1"
}

# Prints how many times the daemon has logged loading the certificate.
# @param (none)
__cert_loads() {
	grep -c 'tls certificate loaded' "$DAEMON_LOG"
}

# Succeeds once the certificate has been loaded more than N times.
# @param $1 N
__cert_loads_above() {
	(($(__cert_loads) > $1))
}

# Succeeds once the daemon has logged a text during this test.
# @param $1 text
__logged() {
	_log_since_test_start | grep -qF -- "$1"
}

@test "EHLO on the MX port advertises STARTTLS and not AUTH" {
	run -0 _smtp_ehlo_raw 'L:QUIT' R
	assert_line --regexp '^250[- ]STARTTLS$'
	refute_line --regexp '^250[- ]AUTH'
	_assert_replies 220 250 '221 2.0.0'
}

@test "AUTH on the MX port is 503 5.5.1, before and after STARTTLS" {
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:STARTTLS' R T 'L:EHLO client.test' R \
		"L:AUTH PLAIN $(_sasl_plain alice@example.test alice-secret)" R \
		'L:AUTH LOGIN' R 'L:NOOP' R
	_assert_replies 220 250 '503 5.5.1' '220 2.0.0' 250 '503 5.5.1' '503 5.5.1' \
		'250 2.0.0'
	refute_line --regexp '^250[- ]AUTH'
}

@test "STARTTLS answers 220 2.0.0 and the handshake succeeds" {
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R 'L:STARTTLS' R T \
		'L:NOOP' R
	assert_line --regexp '^220 2\.0\.0 '
	assert_line --regexp '^<TLS TLSv1\.3 TLS_'
	_assert_replies 220 250 '220 2.0.0' '250 2.0.0'
}

@test "STARTTLS before EHLO works too" {
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:STARTTLS' R T 'L:EHLO client.test' R
	_assert_replies 220 '220 2.0.0' 250
}

@test "after STARTTLS the EHLO state is forgotten: MAIL is 503 5.5.1 until a new EHLO" {
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R 'L:STARTTLS' R T \
		'L:MAIL FROM:<s@remote.test>' R 'L:EHLO client.test' R \
		'L:MAIL FROM:<s@remote.test>' R
	_assert_replies 220 250 '220 2.0.0' '503 5.5.1' 250 '250 2.1.0'
}

@test "after STARTTLS a HELO state is forgotten too" {
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:HELO client.test' R 'L:STARTTLS' R T \
		'L:MAIL FROM:<s@remote.test>' R
	_assert_replies 220 250 '220 2.0.0' '503 5.5.1'
}

@test "EHLO over TLS no longer advertises STARTTLS" {
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R 'L:STARTTLS' R T \
		'L:EHLO client.test' R
	# The only STARTTLS line is the one before the handshake.
	assert_equal "$(grep -c -E '^250[- ]STARTTLS$' <<<"$output")" 1
	assert_line --regexp '^250 CHUNKING$'
}

@test "a second STARTTLS is 503" {
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R 'L:STARTTLS' R T \
		'L:EHLO client.test' R 'L:STARTTLS' R 'L:NOOP' R
	_assert_replies 220 250 '220 2.0.0' 250 '503 5.5.1' '250 2.0.0'
}

@test "STARTTLS inside a transaction is 503 5.5.1" {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R 'L:STARTTLS' R \
		'L:QUIT' R
	_assert_replies 220 250 '250 2.1.0' '503 5.5.1' '221 2.0.0'
}

@test "STARTTLS with an argument is 501" {
	run -0 _smtp_ehlo_raw 'L:STARTTLS now' R 'L:QUIT' R
	_assert_replies 220 250 '501 5.5.4' '221 2.0.0'
}

@test "plaintext pipelined after STARTTLS (RSET) is discarded, not run over TLS" {
	# The tool fails (exit 5) if the daemon answers RSET in clear before
	# the handshake; after it, the first reply must be to HELP.
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R \
		'S:STARTTLS\r\nRSET\r\n' R T 'L:HELP' R 'L:NOOP' R
	_assert_replies 220 250 '220 2.0.0' '214 2.0.0' '250 2.0.0'
	run -0 _log_since_test_start
	assert_output --partial 'starttls-discarded octets=6'
}

@test "plaintext pipelined after STARTTLS (MAIL FROM) is discarded: no transaction over TLS" {
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R \
		'S:STARTTLS\r\nMAIL FROM:<x@y>\r\n' R T 'L:EHLO client.test' R \
		'L:RCPT TO:<alice@example.test>' R 'L:MAIL FROM:<s@remote.test>' R
	# Had the injected MAIL run, RCPT would be accepted and MAIL nested.
	_assert_replies 220 250 '220 2.0.0' 250 '503 5.5.1' '250 2.1.0'
}

@test "a whole injected transaction after STARTTLS delivers nothing" {
	_clear_mailbox alice@example.test
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R \
		'S:STARTTLS\r\nEHLO evil.test\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: injected\r\n\r\nx\r\n.\r\n' \
		R T 'L:NOOP' R
	_assert_replies 220 250 '220 2.0.0' '250 2.0.0'
	sleep 0.3
	assert_equal "$(_count_new alice@example.test)" 0
}

@test "QUIT over STARTTLS gets its 221 before the connection closes" {
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R 'L:STARTTLS' R T \
		'L:EHLO client.test' R 'L:QUIT' R E
	_assert_replies 220 250 '220 2.0.0' 250 '221 2.0.0' '<EOF>'
}

@test "swaks --tls completes cleanly (exit 0, 221 after QUIT)" {
	run -0 _swaks --tls --from s@remote.test --to alice@example.test
	assert_output --partial '<-  220 2.0.0'
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_output --partial '<~  221 2.0.0'
}

@test "swaks --tls delivers; Received says ESMTPS and the TLS version and cipher" {
	_clear_mailbox alice@example.test
	# Exit status: see the test above (221 after QUIT).
	run _swaks --tls --from s@remote.test --to alice@example.test
	assert_output --partial '250 2.0.0 Ok: queued as'
	local file
	file=$(_only_mail alice@example.test)
	run -0 __received_of "$file"
	assert_output --regexp 'with ESMTPS id [0-9a-f]{16}'
	assert_output --regexp '\(using TLSv1\.3:TLS_[A-Z0-9_]+\)'
	refute_output --partial 'ESMTPSA'
}

@test "a transaction pipelined right after the handshake is stamped ESMTPS too" {
	_clear_mailbox alice@example.test
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R 'L:STARTTLS' R T \
		'S:EHLO client.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n' \
		R:4 'S:Subject: pipelined over TLS\r\n\r\nbody\r\n.\r\n' R
	_assert_replies 220 250 '220 2.0.0' 250 '250 2.1.0' '250 2.1.5' 354 '250 2.0.0'
	run -0 __received_of "$(_only_mail alice@example.test)"
	assert_output --regexp 'with ESMTPS id '
	assert_output --partial '(using TLSv1.3:'
}

@test "a plaintext delivery says ESMTP, without a TLS note" {
	_clear_mailbox alice@example.test
	run -0 _smtp_send_text s@remote.test alice@example.test plain
	run -0 __received_of "$(_only_mail alice@example.test)"
	assert_output --regexp 'with ESMTP id '
	refute_output --partial '(using '
}

@test "TLS 1.0 is refused" {
	# SECLEVEL=0 lets the client really offer TLS 1.0, so that the refusal
	# comes from the server (it logs "unsupported protocol").
	run _tls_s_client "$SMTP_PORT" -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
	refute_output --regexp 'New, TLSv1(\.[0-9])?, Cipher is [A-Z]'
	assert_output --partial 'Cipher is (NONE)'
	run -0 _log_since_test_start
	assert_output --partial 'unsupported protocol'
}

@test "TLS 1.1 is refused" {
	run _tls_s_client "$SMTP_PORT" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
	refute_output --regexp 'New, TLSv1(\.[0-9])?, Cipher is [A-Z]'
	assert_output --partial 'Cipher is (NONE)'
	run -0 _log_since_test_start
	assert_output --partial 'unsupported protocol'
}

@test "TLS 1.2 works, with a forward-secret AEAD cipher" {
	run _tls_s_client "$SMTP_PORT" -tls1_2
	assert_output --regexp 'New, TLSv1\.2, Cipher is ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)'
	run -0 _smtp_tls_raw "$SMTP_PORT" --tls-max 1.2 'L:EHLO client.test' R \
		'L:STARTTLS' R T 'L:EHLO client.test' R 'L:MAIL FROM:<s@remote.test>' R
	assert_line --regexp '^<TLS TLSv1\.2 ECDHE-'
	_assert_replies 220 250 '220 2.0.0' 250 '250 2.1.0'
}

@test "TLS 1.3 works" {
	run _tls_s_client "$SMTP_PORT" -tls1_3
	assert_output --regexp 'New, TLSv1\.3, Cipher is TLS_'
}

@test "the certificate presented is the configured one" {
	local want got
	want=$(_tls_fingerprint "$CERT")
	got=$(_tls_server_fingerprint "$SMTP_PORT" smtp)
	assert_equal "$got" "$want"
}

@test "SIGHUP reloads the certificate; a session opened before completes its message" {
	local old_fp new_fp out go pid mark
	old_fp=$(_tls_fingerprint "$CERT")
	out="$BATS_TEST_TMPDIR/old-session.out"
	go="$BATS_TEST_TMPDIR/go"
	_clear_mailbox alice@example.test
	# A session on the old certificate, paused before DATA until $go exists.
	"$PY" "$TOOLS/smtp_tls_raw.py" --port "$SMTP_PORT" --timeout 30 \
		'L:EHLO client.test' R 'L:STARTTLS' R T C 'L:EHLO client.test' R \
		'L:MAIL FROM:<s@remote.test>' R 'L:RCPT TO:<alice@example.test>' R \
		"W:$go" 'L:DATA' R 'S:Subject: across a reload\r\n\r\nbody\r\n.\r\n' R \
		'L:NOOP' R >"$out" 2>&1 3>&- &
	pid=$!
	_repeat_until_timeout 20 grep -q '^250 2\.1\.5' "$out" || {
		kill "$pid"
		cat "$out"
		fail "the old session did not get to RCPT"
	}

	# New key and certificate in place of the old files, then SIGHUP.
	_tls_self_signed "$BATS_TEST_TMPDIR/new.pem" "$BATS_TEST_TMPDIR/new.key"
	cp "$BATS_TEST_TMPDIR/new.key" "$KEY"
	cp "$BATS_TEST_TMPDIR/new.pem" "$CERT"
	new_fp=$(_tls_fingerprint "$CERT")
	[[ $new_fp != "$old_fp" ]] || fail "the new certificate is the old one"
	mark=$(__cert_loads)
	kill -HUP "$(_daemon_pid)"
	_repeat_until_timeout 10 __cert_loads_above "$mark"

	# New connections see the new certificate ...
	assert_equal "$(_tls_server_fingerprint "$SMTP_PORT" smtp)" "$new_fp"
	run -0 _smtp_tls_raw "$SMTP_PORT" 'L:EHLO client.test' R 'L:STARTTLS' R T C
	assert_line "<CERT SHA256=$new_fp>"

	# ... while the old session goes on and delivers.
	touch "$go"
	local rc=0
	wait "$pid" || rc=$?
	((rc == 0)) || fail "the old session failed (exit $rc): $(cat "$out")"
	run cat "$out"
	assert_line "<CERT SHA256=$old_fp>"
	_assert_replies 220 250 '220 2.0.0' 250 '250 2.1.0' '250 2.1.5' 354 '250 2.0.0' \
		'250 2.0.0'
	assert_equal "$(_count_new alice@example.test)" 1
	kill -0 "$(_daemon_pid)"
}

@test "SIGHUP with a broken certificate keeps the old one in use" {
	local fp
	fp=$(_tls_fingerprint "$CERT")
	cp "$CERT" "$BATS_TEST_TMPDIR/good.pem"
	echo 'not a certificate' >"$CERT"
	kill -HUP "$(_daemon_pid)"
	_repeat_until_timeout 10 __logged "tls: $CERT"
	cp "$BATS_TEST_TMPDIR/good.pem" "$CERT"
	kill -0 "$(_daemon_pid)"
	assert_equal "$(_tls_server_fingerprint "$SMTP_PORT" smtp)" "$fp"
}
