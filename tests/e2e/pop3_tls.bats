#!/usr/bin/env bats
# POP3 over TLS: STLS (RFC 2595) on the POP3 port and implicit TLS on the
# [pop3s] port (RFC 8314), with plaintext logins refused
# (pop3.allow_plaintext_auth = no): real clients (curl, poplib, openssl
# s_client), TLS 1.0/1.1 refused, the STLS injection test (CVE-2011-0411
# class), wrong passwords, handshakes that never block the loop, and the
# [auth] plaintext_on_loopback exception at the end.

load helpers/common
load helpers/daemon
load helpers/smtp
load helpers/pop3

ALICE=alice@example.test
ALICE_PW=alice-secret

setup_file() {
	_pop3_tls_setup_file pop3.allow_plaintext_auth=no pop3.idle_timeout=5
	_add_domain example.test
	_add_mailbox "$ALICE" "$ALICE_PW"
	_add_mailbox bob@example.test bob-secret
	# alice: a short message and a large one with dot-lines, left alone
	# by every test (read-only)
	_smtp_send_text sender@remote.test "$ALICE" "over tls" >/dev/null ||
		return 1
	"$PY" "$TOOLS/msgtool.py" gen big "$BATS_FILE_TMPDIR/big.eml" 3000000 ||
		return 1
	_smtp_send_file sender@remote.test "$ALICE" "$BATS_FILE_TMPDIR/big.eml" \
		>/dev/null || return 1
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

# Writes the CRLF form of an address's Nth stored message (POP3 order:
# oldest first, as the names sort) to a file: what RETR must send.
# @param $1 address
# @param $2 message number
# @param $3 output file
__stored_crlf() {
	local md file
	md=$(_maildir_of "$1")
	file=$(find "$md/new" "$md/cur" -maxdepth 1 -type f -printf '%f\t%p\n' |
		sort -t. -k1,1n -k2.2,2n | sed -n "$2p" | cut -f2)
	[[ -n $file ]] || return 1
	"$PY" "$TOOLS/msgtool.py" crlf "$file" "$3"
}

# openssl s_client with no input: the handshake only. Output text only.
# @param $1 port
# @param $@ s_client options
__s_client() {
	local port=$1
	shift
	timeout 30 openssl s_client -connect "127.0.0.1:$port" "$@" \
		</dev/null 2>&1 | tr -d '\r\0'
	return "${PIPESTATUS[0]}"
}

# The SASL LOGIN step for a string.
__b64() {
	printf '%s' "$1" | base64 -w0
}

@test "CAPA before TLS offers STLS but neither USER nor SASL" {
	run -0 _pop3_raw 'L:CAPA' M 'L:QUIT' R
	assert_line 'STLS'
	refute_line 'USER'
	refute_line --regexp '^SASL'
	assert_line 'IMPLEMENTATION Postern'
}

@test "USER, PASS and AUTH before STLS are refused with -ERR [AUTH]" {
	local refused='-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.'
	run -0 _pop3_raw "L:USER $ALICE" R "L:PASS $ALICE_PW" R \
		"L:AUTH PLAIN $(_sasl_plain "$ALICE" "$ALICE_PW")" R 'L:AUTH' R \
		'L:STAT' R 'L:QUIT' R
	assert_equal "${lines[1]}" "$refused"
	assert_equal "${lines[2]}" "$refused"
	assert_equal "${lines[3]}" "$refused"
	assert_equal "${lines[4]}" "$refused"
	assert_line -n 5 --regexp '^-ERR '
	# nothing reached the credential check
	run -0 _log_since_test_start
	refute_output --partial 'auth success'
	refute_output --partial 'auth failed'
	refute_output --partial "$ALICE_PW"
}

@test "curl without TLS cannot log in" {
	run curl --silent --show-error --max-time 30 --user "$ALICE:$ALICE_PW" \
		"pop3://127.0.0.1:$POP3_PORT/"
	assert_failure
	run -0 _log_since_test_start
	refute_output --partial 'pop3 login user='
}

@test "curl --ssl-reqd pop3:// (STLS) lists and retrieves byte for byte" {
	local t=$BATS_TEST_TMPDIR
	run -0 _curl_stls "$ALICE" "$ALICE_PW" ""
	assert_equal "${#lines[@]}" 2
	run -0 _curl_stls "$ALICE" "$ALICE_PW" 2 --output "$t/m2"
	__stored_crlf "$ALICE" 2 "$t/want2"
	_assert_same_bytes "$t/want2" "$t/m2"
	run -0 _log_since_test_start
	assert_output --regexp 'pop3 tls established TLSv1\.[23]:'
	assert_output --regexp "pop3 login user=$ALICE messages=2 tls=TLSv1\.[23]:"
}

@test "curl pop3s:// lists and retrieves byte for byte" {
	local t=$BATS_TEST_TMPDIR
	run -0 _curl_pop3s "$ALICE" "$ALICE_PW" ""
	assert_equal "${#lines[@]}" 2
	run -0 _curl_pop3s "$ALICE" "$ALICE_PW" 1 --output "$t/m1"
	__stored_crlf "$ALICE" 1 "$t/want1"
	_assert_same_bytes "$t/want1" "$t/m1"
	# -k as a client without the CA would do
	run -0 curl --silent --show-error --max-time 60 -k \
		--user "$ALICE:$ALICE_PW" "pop3s://127.0.0.1:$POP3S_PORT/"
	assert_equal "${#lines[@]}" 2
	run -0 _log_since_test_start
	assert_output --partial 'tls=implicit'
}

@test "poplib: POP3 + stls(), then CAPA, USER/PASS, STAT, RETR and QUIT" {
	local t=$BATS_TEST_TMPDIR
	run -0 _poplib_tls stls "$ALICE" "$ALICE_PW" capa stat "retr:2:$t/m2" quit
	assert_line 'stls +OK Begin TLS negotiation'
	assert_line --regexp '^tls TLSv1\.[23] '
	assert_line 'login +OK Logged in.'
	# no STLS once TLS is on (RFC 2595 §4)
	assert_line --regexp '^capa .*\bUIDL\b'
	refute_line --regexp '^capa .*\bSTLS\b'
	assert_line --regexp '^stat 2 [0-9]+$'
	assert_line 'retr 2 ok'
	assert_line 'quit +OK Bye'
	__stored_crlf "$ALICE" 2 "$t/want2"
	_assert_same_bytes "$t/want2" "$t/m2"
}

@test "poplib: POP3_SSL logs in, retrieves the large message and quits" {
	local t=$BATS_TEST_TMPDIR
	run -0 _poplib_tls ssl "$ALICE" "$ALICE_PW" capa list "retr:2:$t/m2" quit
	assert_line --regexp '^tls TLSv1\.[23] '
	assert_line 'login +OK Logged in.'
	refute_line --regexp '^capa .*\bSTLS\b'
	assert_line --regexp '^list 2 [0-9]+$'
	assert_line 'quit +OK Bye'
	__stored_crlf "$ALICE" 2 "$t/want2"
	_assert_same_bytes "$t/want2" "$t/m2"
}

@test "a wrong password over TLS is -ERR [AUTH], the right one then works" {
	run -1 _poplib_tls ssl "$ALICE" wrong-password stat
	assert_line 'ERR -ERR [AUTH] Invalid login'
	run -1 _poplib_tls stls nobody@example.test "$ALICE_PW" stat
	assert_line 'ERR -ERR [AUTH] Invalid login'
	run -0 _pop3_tls_raw implicit \
		"L:AUTH PLAIN $(_sasl_plain "$ALICE" nope)" R \
		"L:AUTH PLAIN $(_sasl_plain "$ALICE" "$ALICE_PW")" R 'L:QUIT' R
	assert_line -n 2 '-ERR [AUTH] Invalid login'
	assert_line -n 3 '+OK Logged in.'
	run -0 _log_since_test_start
	assert_output --partial "auth failed user=$ALICE"
	refute_output --partial 'wrong-password'
}

@test "after STLS, CAPA offers USER and SASL; AUTH PLAIN and LOGIN work; * cancels" {
	run -0 _pop3_tls_raw plain 'L:STLS' R TLS 'L:CAPA' M \
		'L:AUTH PLAIN' R "L:$(_sasl_plain "$ALICE" "$ALICE_PW")" R \
		'L:STAT' R 'L:QUIT' R
	assert_line -n 1 '+OK Begin TLS negotiation'
	assert_line 'USER'
	assert_line 'SASL PLAIN LOGIN'
	refute_line 'STLS'
	assert_line '+ '
	assert_line '+OK Logged in.'
	assert_line --regexp '^\+OK 2 [0-9]+$'
	run -0 _pop3_tls_raw implicit 'L:AUTH' M 'L:AUTH LOGIN' R 'L:*' R \
		'L:AUTH LOGIN' R "L:$(__b64 "$ALICE")" R "L:$(__b64 "$ALICE_PW")" R \
		'L:QUIT' R
	assert_line 'LOGIN'
	assert_line '-ERR Authentication cancelled'
	assert_line '+ VXNlcm5hbWU6'
	assert_line '+ UGFzc3dvcmQ6'
	assert_line '+OK Logged in.'
	# the initial response form
	run -0 _pop3_tls_raw implicit "L:AUTH LOGIN $(__b64 "$ALICE")" R \
		"L:$(__b64 "$ALICE_PW")" R 'L:QUIT' R
	assert_line -n 2 '+ UGFzc3dvcmQ6'
	assert_line -n 3 '+OK Logged in.'
}

@test "openssl s_client -starttls pop3: verified certificate, clean close" {
	run -0 bash -c "printf 'CAPA\r\nQUIT\r\n' | timeout 30 openssl s_client \
		-starttls pop3 -connect 127.0.0.1:$POP3_PORT -CAfile '$TLS_CERT' \
		-verify_return_error -verify_hostname mx.example.test -quiet 2>&1 |
		tr -d '\r'"
	assert_line 'verify return:1'
	assert_line 'USER'
	assert_line 'SASL PLAIN LOGIN'
	refute_line 'STLS'
	assert_line '+OK Bye'
	# exit status 0: the server sent close_notify (no truncation error)
	refute_output --partial 'unexpected eof'
}

@test "openssl s_client on the POP3S port: the greeting comes over TLS" {
	run -0 bash -c "printf 'QUIT\r\n' | timeout 30 openssl s_client \
		-connect 127.0.0.1:$POP3S_PORT -CAfile '$TLS_CERT' \
		-verify_return_error -verify_hostname mx.example.test -quiet 2>&1 |
		tr -d '\r'"
	assert_line '+OK Postern POP3 ready.'
	assert_line '+OK Bye'
}

@test "TLS 1.0 and 1.1 are refused on both ports, 1.2 and 1.3 accepted" {
	local v
	# SECLEVEL=0 so that the client itself would offer the old versions
	for v in -tls1 -tls1_1; do
		run __s_client "$POP3S_PORT" "$v" -cipher DEFAULT@SECLEVEL=0
		assert_failure
		assert_output --partial 'alert protocol version'
		refute_output --partial 'New, TLSv1'
		run __s_client "$POP3_PORT" "$v" -cipher DEFAULT@SECLEVEL=0 \
			-starttls pop3
		assert_failure
		refute_output --partial 'New, TLSv1'
	done
	for v in -tls1_2 -tls1_3; do
		run -0 __s_client "$POP3S_PORT" "$v"
		assert_output --regexp "New, TLSv1\\.${v#-tls1_}, Cipher is "
		run -0 __s_client "$POP3_PORT" "$v" -starttls pop3
		assert_output --regexp "New, TLSv1\\.${v#-tls1_}, Cipher is "
	done
	run -0 _log_since_test_start
	assert_output --partial 'disconnected reason=tls-handshake'
	assert_output --partial 'unsupported protocol'
}

@test "STLS injection: input pipelined after STLS is dropped, never run after TLS" {
	# USER sent in clear in the same packet as STLS must not count
	# after the handshake: PASS then has no user.
	run -0 _pop3_tls_raw plain "S:STLS\r\nUSER $ALICE\r\n" R TLS Q:1 \
		"L:PASS $ALICE_PW" R 'L:QUIT' R
	assert_line -n 1 '+OK Begin TLS negotiation'
	refute_line --partial '<UNREAD'
	assert_line -n 2 --regexp '^<TLS TLSv1\.[23]>$'
	assert_line -n 3 '<SILENT>'
	assert_line -n 4 '-ERR No user name given, send USER first'
	# A whole login injected: no session is logged in after TLS.
	run -0 _pop3_tls_raw plain \
		"S:STLS\r\nUSER $ALICE\r\nPASS $ALICE_PW\r\nSTAT\r\n" R TLS Q:1 \
		'L:STAT' R 'L:QUIT' R
	assert_line -n 3 '<SILENT>'
	assert_line -n 4 '-ERR Command not valid in this state'
	run -0 _log_since_test_start
	assert_output --regexp 'pop3 stls-discarded octets=[0-9]+'
	refute_output --partial 'auth success'
	refute_output --partial 'pop3 login user='
}

@test "STLS is refused once TLS is on, and outside AUTHORIZATION" {
	run -0 _pop3_tls_raw implicit 'L:CAPA' M 'L:STLS' R \
		"L:USER $ALICE" R "L:PASS $ALICE_PW" R 'L:STLS' R 'L:QUIT' R
	refute_line 'STLS'
	assert_line '-ERR TLS is already active'
	assert_line '+OK Logged in.'
	assert_line '-ERR Command not valid in this state'
	run -0 _pop3_tls_raw plain 'L:STLS' R TLS 'L:STLS' R 'L:QUIT' R
	assert_line -n 3 '-ERR TLS is already active'
}

@test "handshakes never block the loop; stalled ones end at the idle timeout" {
	run -0 "$PY" - "$POP3_PORT" "$POP3S_PORT" "$TLS_CERT" "$ALICE" "$ALICE_PW" <<'EOF'
import poplib, socket, ssl, sys, time

port, port_s, cert, user, pw = sys.argv[1:6]
t0 = time.time()
# a POP3S client that says nothing: no greeting in clear
idle = socket.create_connection(("127.0.0.1", int(port_s)), timeout=1)
try:
    print("pop3s plaintext greeting:", idle.recv(100))
except socket.timeout:
    print("pop3s: no greeting before TLS")
idle.settimeout(15)
# half a ClientHello
half = socket.create_connection(("127.0.0.1", int(port_s)), timeout=15)
half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
# STLS, then no handshake
stls = socket.create_connection(("127.0.0.1", int(port)), timeout=15)
f = stls.makefile("rb")
f.readline()
stls.sendall(b"STLS\r\n")
print("stls:", f.readline().strip().decode())
# meanwhile a real client gets through at once
ctx = ssl.create_default_context(cafile=cert)
ctx.check_hostname = False
c = poplib.POP3_SSL("127.0.0.1", int(port_s), context=ctx, timeout=10)
c.user(user)
c.pass_(pw)
c.quit()
print("other client done within 3s:", time.time() - t0 < 3)
# the stalled ones are closed after pop3.idle_timeout (5 s)
for name, s in (("idle", idle), ("half", half), ("stls", stls)):
    try:
        data = s.recv(100)
    except ConnectionResetError:
        data = b""
    print(name, "closed" if data == b"" else data, "after idle timeout:",
          4 <= time.time() - t0 < 12)
EOF
	assert_line 'pop3s: no greeting before TLS'
	assert_line 'stls: +OK Begin TLS negotiation'
	assert_line 'other client done within 3s: True'
	assert_line 'idle closed after idle timeout: True'
	assert_line 'half closed after idle timeout: True'
	assert_line 'stls closed after idle timeout: True'
	run -0 _log_since_test_start
	assert_output --partial 'disconnected reason=timeout'
}

@test "an idle session over TLS gets -ERR before the idle timeout closes it" {
	run -0 _pop3_tls_raw plain 'L:STLS' R TLS 'L:CAPA' M E
	assert_line '-ERR Disconnected for inactivity'
	assert_line -n -1 '<EOF>'
	run -0 _pop3_tls_raw implicit E
	assert_line '-ERR Disconnected for inactivity'
}

@test "over TLS, a close without close_notify is an EOF: pipelined commands still run" {
	_clear_mailbox bob@example.test
	_smtp_send_text sender@remote.test bob@example.test "to delete" >/dev/null
	assert_equal "$(_count_new bob@example.test)" 1
	run -0 "$PY" - "$POP3S_PORT" "$TLS_CERT" <<'EOF'
import os, socket, ssl, sys

ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30))
s.recv(100)
s.sendall(b"USER bob@example.test\r\nPASS bob-secret\r\nDELE 1\r\nQUIT\r\n")
# shut the TCP side at once, without close_notify
socket.socket(fileno=os.dup(s.fileno())).shutdown(socket.SHUT_WR)
data = b""
while True:
    chunk = s.recv(1000)
    if not chunk:
        break
    data += chunk
print(data.decode().replace("\r\n", "|"))
EOF
	assert_output --partial '+OK Logged in.|+OK message 1 deleted|+OK Bye|'
	assert_equal "$(_count_new bob@example.test)" 0
	# a client that just goes away is an EOF, not a TLS error
	run -0 "$PY" - "$POP3S_PORT" "$TLS_CERT" <<'EOF'
import os, socket, ssl, sys

ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30))
s.recv(100)
socket.socket(fileno=os.dup(s.fileno())).shutdown(socket.SHUT_WR)
print(s.recv(100))
EOF
	run -0 _log_since_test_start
	assert_output --partial 'disconnected reason=disconnected'
	refute_output --partial 'tls error='
	refute_output --partial 'reason=io-error'
}

@test "a SASL user name with CR LF cannot forge log lines" {
	local forged
	forged=$(printf '\0bob\n%s\0pw' '2026-01-01T00:00:00.000Z posternd info: FORGED' |
		base64 -w0)
	run -0 _pop3_tls_raw implicit "L:AUTH PLAIN $forged" R 'L:QUIT' R
	assert_line -n 2 '-ERR [AUTH] Invalid login'
	run grep -c '^2026-01-01T00:00:00.000Z posternd info: FORGED' "$DAEMON_LOG"
	assert_output 0
	run -0 _log_since_test_start
	assert_output --partial 'auth failed user=bob?2026-01-01'
}

# The last tests restart the daemon with [auth] plaintext_on_loopback.

@test "[auth] plaintext_on_loopback: loopback clients may log in without TLS" {
	_pop3_tls_write_config pop3.allow_plaintext_auth=no pop3.idle_timeout=5 \
		auth.plaintext_on_loopback=yes
	_daemon_restart
	__pop3s_wait_listening
	run -0 _pop3_raw 'L:CAPA' M "L:USER $ALICE" R "L:PASS $ALICE_PW" R \
		'L:QUIT' R
	assert_line 'STLS'
	assert_line 'USER'
	assert_line 'SASL PLAIN LOGIN'
	assert_line '+OK Logged in.'
}

@test "USER given before STLS is forgotten after the handshake" {
	run -0 _pop3_tls_raw plain "L:USER $ALICE" R 'L:STLS' R TLS \
		"L:PASS $ALICE_PW" R "L:USER $ALICE" R "L:PASS $ALICE_PW" R 'L:QUIT' R
	assert_line -n 1 '+OK'
	assert_line -n 2 '+OK Begin TLS negotiation'
	assert_line -n 4 '-ERR No user name given, send USER first'
	assert_line -n 6 '+OK Logged in.'
	# STLS in the middle of an AUTH LOGIN exchange is an answer to the
	# challenge ("STLS" is valid base64), never a command
	run -0 _pop3_tls_raw plain 'L:AUTH LOGIN' R 'L:STLS' R 'L:*' R 'L:QUIT' R
	assert_line -n 1 '+ VXNlcm5hbWU6'
	assert_line -n 2 '+ UGFzc3dvcmQ6'
	assert_line -n 3 '-ERR Authentication cancelled'
	refute_line --partial 'Begin TLS'
}
