#!/usr/bin/env bats
# Relay host mode ([relay] host): every remote message goes to one smart
# host, over STARTTLS that must succeed and whose certificate is checked
# against [relay] ca_file and the host name, with AUTH (credentials from
# [relay] auth_file). The relay is an aiosmtpd sink that requires TLS and
# AUTH, with a certificate for relay.test signed by a test CA.

load helpers/common
load helpers/daemon
load tools/outbound

# Makes a CA and a certificate for NAME signed by it, in DIR.
# @param $1 directory
# @param $2 name (CN and subjectAltName)
__make_certs() {
	local d=$1 name=$2
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Postern test CA" \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null || return 1
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" \
		-keyout "$d/$name.key" -out "$d/$name.csr" 2>/dev/null || return 1
	printf 'subjectAltName=DNS:%s\n' "$name" >"$d/$name.ext"
	openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/$name.ext" \
		-out "$d/$name.crt" 2>/dev/null
}

setup_file() {
	local d="$BATS_FILE_TMPDIR"
	__make_certs "$d" relay.test
	# A second certificate, for another name, signed by the same CA.
	openssl req -newkey rsa:2048 -nodes -subj "/CN=other.test" \
		-keyout "$d/other.key" -out "$d/other.csr" 2>/dev/null
	printf 'subjectAltName=DNS:other.test\n' >"$d/other.ext"
	openssl x509 -req -in "$d/other.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/other.ext" -out "$d/other.crt" \
		2>/dev/null
	printf 'relayuser\nrelaypass\n' >"$d/relay.auth"
	chmod 600 "$d/relay.auth"
	export OUTBOUND_EXTRA_CONFIG="[relay]
host = relay.test
port = @MX_PORT@
auth_file = $d/relay.auth
ca_file = $d/ca.crt
tls_verify = yes
"
	_outbound_setup_file || return 1
	[[ -z ${OUTBOUND_SKIP:-} ]] || return 0
	_sink_start relay 127.0.0.4 --tls-cert "$d/relay.test.crt" \
		--tls-key "$d/relay.test.key" --require-tls --auth relayuser:relaypass
}

teardown_file() {
	_outbound_teardown_file
}

setup() {
	_outbound_setup
	_clear_mailbox sender@example.test
}

teardown() {
	_test_teardown
}

@test "remote mail goes to the relay host over verified TLS with AUTH" {
	local before
	before=$(_sink_count relay)
	run -0 _send --from sender@example.test --to fwd-multi@example.test
	_sink_wait relay $((before + 1))
	run -0 cat "$(_sink_dir relay)/msg-$(_sink_count relay).json"
	assert_output --partial '"tls": true'
	assert_output --partial '"authenticated": true'
	assert_output --partial '"rcpt_tos": ["a@remote.test", "b@remote.test", "c@remote.test"]'
	_log_wait "queue delivered rcpt=<a@remote.test> relay=relay.test[127.0.0.4]:$MX_PORT"
	run -0 _log_since_test_start
	assert_output --partial 'tls=TLSv1.3'
	# The password never appears in the log.
	refute_output --partial 'relaypass'
	refute_output --partial "$(printf '\0relayuser\0relaypass' | base64)"
	# The remote MX of remote.test was not contacted.
	[[ $(_sink_count remote) -eq 0 ]]
	_queue_wait_count 0
}

@test "with a relay, even a domain without DNS goes to the relay" {
	local before
	before=$(_sink_count relay)
	run -0 _send --from sender@example.test --to fwd-nx@example.test
	_sink_wait relay $((before + 1))
	_queue_wait_count 0
}

@test "a relay that rejects the password: deferred, never bounced" {
	_sink_stop relay
	_sink_start relay 127.0.0.4 --tls-cert "$BATS_FILE_TMPDIR/relay.test.crt" \
		--tls-key "$BATS_FILE_TMPDIR/relay.test.key" --require-tls \
		--auth relayuser:otherpass
	run -0 _send --from sender@example.test --to fwd-ok@example.test
	_log_wait "authentication failed"
	_log_wait "queue deferred rcpt=<bob@remote.test>"
	[[ $(_queue_count) -eq 1 ]]
	[[ $(_count_new sender@example.test) -eq 0 ]]
	# The right password again: the retry gets through.
	local before
	before=$(_sink_count relay)
	_sink_stop relay
	_sink_start relay 127.0.0.4 --tls-cert "$BATS_FILE_TMPDIR/relay.test.crt" \
		--tls-key "$BATS_FILE_TMPDIR/relay.test.key" --require-tls \
		--auth relayuser:relaypass
	_sink_wait relay $((before + 1)) 20
	_queue_wait_count 0
}

# Counts the daemon log lines since the test began that contain a string.
# @param $1 string
__log_count() {
	_log_since_test_start | grep -cF -- "$1"
}

__log_count_is() {
	(($(__log_count "$1") >= $2))
}

# Writes the relay auth_file and sends SIGHUP; waits for the Nth reload
# line of this test.
# @param $1 password
# @param $2 N
__relay_password() {
	printf 'relayuser\n%s\n' "$1" >"$BATS_FILE_TMPDIR/relay.auth"
	kill -HUP "$(_daemon_pid)"
	_repeat_until_timeout 10 __log_count_is "reload: relay credentials" "$2"
}

@test "SIGHUP reads a changed relay auth_file: deferred mail then logs in with it" {
	local d="$BATS_FILE_TMPDIR" before
	_sink_stop relay
	_sink_start relay 127.0.0.4 --tls-cert "$d/relay.test.crt" \
		--tls-key "$d/relay.test.key" --require-tls --auth relayuser:newpass
	before=$(_sink_count relay)
	run -0 _send --from sender@example.test --to fwd-ok@example.test
	_log_wait "queue deferred rcpt=<bob@remote.test>"
	[[ $(_sink_count relay) -eq $before ]]
	__relay_password newpass 1
	run -0 _ctl queue flush
	_sink_wait relay $((before + 1)) 20
	_queue_wait_count 0
	run -0 cat "$(_sink_dir relay)/msg-$(_sink_count relay).json"
	assert_output --partial '"authenticated": true'
	# Back to the first password, for the tests that follow.
	__relay_password relaypass 2
	_sink_stop relay
	_sink_start relay 127.0.0.4 --tls-cert "$d/relay.test.crt" \
		--tls-key "$d/relay.test.key" --require-tls --auth relayuser:relaypass
}

@test "SIGHUP with a broken relay auth_file keeps the credentials in use" {
	local d="$BATS_FILE_TMPDIR" before
	: >"$d/relay.auth"
	kill -HUP "$(_daemon_pid)"
	_log_wait "reload: relay: [relay] auth_file $d/relay.auth: empty"
	before=$(_sink_count relay)
	run -0 _send --from sender@example.test --to fwd-ok@example.test
	_sink_wait relay $((before + 1))
	_queue_wait_count 0
	printf 'relayuser\nrelaypass\n' >"$d/relay.auth"
	kill -HUP "$(_daemon_pid)"
	_log_wait "reload: relay credentials"
}

@test "SIGHUP with a new relay host is refused: it needs a restart, nothing changes" {
	local before
	sed -i 's/^host = relay.test$/host = other.test/' "$CONFIG"
	kill -HUP "$(_daemon_pid)"
	_log_wait "reload: relay: a new [relay] host or port needs a restart"
	sed -i 's/^host = other.test$/host = relay.test/' "$CONFIG"
	# Mail still goes to the relay the daemon started with.
	before=$(_sink_count relay)
	run -0 _send --from sender@example.test --to fwd-ok@example.test
	_sink_wait relay $((before + 1))
	_queue_wait_count 0
}

@test "a relay whose certificate is for another name is refused" {
	_sink_stop relay
	_sink_start relay 127.0.0.4 --tls-cert "$BATS_FILE_TMPDIR/other.crt" \
		--tls-key "$BATS_FILE_TMPDIR/other.key" --require-tls \
		--auth relayuser:relaypass
	local before
	before=$(_sink_count relay)
	run -0 _send --from sender@example.test --to fwd-ok@example.test
	_log_wait "certificate verification failed"
	_log_wait "queue deferred rcpt=<bob@remote.test>"
	[[ $(_sink_count relay) -eq $before ]]
	[[ $(_queue_count) -eq 1 ]]
	local id
	id=$(basename "$(find "$DATA_DIR/queue" -maxdepth 1 -name '*.env')" .env)
	run -0 _ctl queue delete "$id"
	_queue_wait_count 0
}

@test "a relay without STARTTLS gets no mail: TLS is required" {
	_sink_stop relay
	_sink_start relay 127.0.0.4
	local before
	before=$(_sink_count relay)
	run -0 _send --from sender@example.test --to fwd-ok@example.test
	_log_wait "TLS is required"
	_log_wait "queue deferred rcpt=<bob@remote.test>"
	[[ $(_sink_count relay) -eq $before ]]
	local id
	id=$(basename "$(find "$DATA_DIR/queue" -maxdepth 1 -name '*.env')" .env)
	run -0 _ctl queue delete "$id"
	_queue_wait_count 0
}
