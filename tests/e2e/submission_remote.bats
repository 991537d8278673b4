#!/usr/bin/env bats
# The issue 3 "done when" path with real parts end to end: a mail client's
# settings (submission with STARTTLS + AUTH) send to a remote domain; the
# queue finds its MX through DNS (dnsmasq) and delivers to a second Postern
# there, where the recipient reads it over POP3S. The Received chain shows
# both hops.

load helpers/common
load helpers/daemon
load tools/outbound

setup_file() {
	local ports
	read -r SUB_PORT REMOTE_POP3S_PORT REMOTE_POP3_PORT <<<"$(_free_ports 3)"
	export SUB_PORT REMOTE_POP3S_PORT REMOTE_POP3_PORT
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		-subj "/CN=mx.example.test" -keyout "$BATS_FILE_TMPDIR/key.pem" \
		-out "$BATS_FILE_TMPDIR/cert.pem" 2>/dev/null
	_outbound_setup_file "submission.listen=127.0.0.1:$SUB_PORT" \
		"tls.cert=$BATS_FILE_TMPDIR/cert.pem" \
		"tls.key=$BATS_FILE_TMPDIR/key.pem" \
		"auth.fail_delay=100" || return 1
	[[ -z ${OUTBOUND_SKIP:-} ]] || return 0
	__remote_start
}

# The remote side: a second posternd, MX for plain.test (A 127.0.0.5,
# implicit MX), with POP3S for its user.
__remote_start() {
	local dir="$BATS_FILE_TMPDIR/remote"
	mkdir -p "$dir"
	cat >"$dir/postern.conf" <<CONF
[server]
hostname = mx.plain.test
data_dir = $dir/data
[smtp]
listen = 127.0.0.5:$MX_PORT
[pop3]
listen = 127.0.0.5:$REMOTE_POP3_PORT
allow_plaintext_auth = no
[pop3s]
listen = 127.0.0.5:$REMOTE_POP3S_PORT
[tls]
cert = $BATS_FILE_TMPDIR/cert.pem
key = $BATS_FILE_TMPDIR/key.pem
CONF
	"$POSTERNCTL" -c "$dir/postern.conf" domain add plain.test >/dev/null
	printf 'friend-secret\n' |
		"$POSTERNCTL" -c "$dir/postern.conf" mailbox add friend@plain.test
	__outbound_spawn remote-postern "$POSTERND" -c "$dir/postern.conf"
	_repeat_until_timeout 20 _port_is_open 127.0.0.5 "$REMOTE_POP3S_PORT"
}

teardown_file() {
	_outbound_stop remote-postern
	_outbound_teardown_file
}

setup() {
	_outbound_setup
}

teardown() {
	_test_teardown
}

@test "submission with STARTTLS and AUTH to a remote domain arrives at its MX and is read over POP3S" {
	run -0 swaks --server 127.0.0.1 --port "$SUB_PORT" --tls \
		--auth PLAIN --auth-user sender@example.test --auth-password secret \
		--from sender@example.test --to friend@plain.test \
		--header "Subject: across the net" --body "hello friend"
	assert_output --partial '250 2.0.0 Ok: queued as'
	# The queue sends it on to 127.0.0.5, the second Postern.
	_repeat_until_timeout 30 __remote_has_mail
	run -0 "$PY" - "$REMOTE_POP3S_PORT" <<'PYEOF'
import poplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3_SSL("127.0.0.5", int(sys.argv[1]), context=ctx)
p.user("friend@plain.test")
p.pass_("friend-secret")
count, _ = p.stat()
lines = p.retr(count)[1]
p.quit()
sys.stdout.write("\n".join(l.decode() for l in lines) + "\n")
PYEOF
	assert_output --partial 'Subject: across the net'
	assert_output --partial 'hello friend'
	# Two Received headers: the remote MX's on top (our queue arriving
	# with ESMTPS), then ours (the client, authenticated over TLS).
	assert_output --regexp 'by mx\.plain\.test \(Postern\) with ESMTPS? id'
	assert_output --regexp 'by mx\.example\.test \(Postern\) with ESMTPSA id'
	local first second
	first=$(grep -n 'by mx.plain.test' <<<"$output" | head -1 | cut -d: -f1)
	second=$(grep -n 'by mx.example.test' <<<"$output" | head -1 | cut -d: -f1)
	((first < second))
	# The local queue is empty again.
	_repeat_until_timeout 10 __queue_empty
}

@test "submission to a remote domain without AUTH is refused" {
	run swaks --server 127.0.0.1 --port "$SUB_PORT" --tls \
		--from sender@example.test --to friend@plain.test --quit-after RCPT
	assert_output --partial '530 5.7.0'
}

@test "the MX port still refuses to relay for unauthenticated clients" {
	run swaks --server 127.0.0.1 --port "$SMTP_PORT" \
		--from sender@example.test --to friend@plain.test --quit-after RCPT
	assert_output --partial '554 5.7.1'
}

__remote_has_mail() {
	local n
	n=$(find "$BATS_FILE_TMPDIR/remote/data/mail/plain.test/friend/new" -type f 2>/dev/null | wc -l)
	((n >= 1))
}

__queue_empty() {
	[[ $(_queue_count) -eq 0 ]]
}
