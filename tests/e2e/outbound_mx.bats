#!/usr/bin/env bats
# Outbound delivery to remote MXs found through DNS (dnsmasq on loopback,
# aiosmtpd sinks on 127.0.0.x): one transaction for several recipients at
# one domain, bounces (RFC 3464) into the sender's POP3 mailbox, the DSN
# parameters of RFC 3461, Null MX (RFC 7505), NXDOMAIN, implicit MX and
# opportunistic STARTTLS. Mail goes out through aliases of example.test
# that point at other domains, so no authentication is needed.

load helpers/common
load helpers/daemon
load tools/outbound

setup_file() {
	_outbound_setup_file || return 1
	[[ -z ${OUTBOUND_SKIP:-} ]] || return 0
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.tls.test" \
		-keyout "$BATS_FILE_TMPDIR/tls.key" -out "$BATS_FILE_TMPDIR/tls.crt" \
		2>/dev/null
	_sink_start tls 127.0.0.6 --tls-cert "$BATS_FILE_TMPDIR/tls.crt" \
		--tls-key "$BATS_FILE_TMPDIR/tls.key"
	_sink_start plain 127.0.0.5
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

# Prints the JSON envelope of the newest message of a sink.
__sink_last_json() {
	local dir n
	dir=$(_sink_dir "$1")
	n=$(_sink_count "$1")
	cat "$dir/msg-$n.json"
}

__sink_last_eml() {
	echo "$(_sink_dir "$1")/msg-$(_sink_count "$1").eml"
}

@test "mail for a remote domain is delivered to its MX and leaves the queue" {
	local before
	before=$(_sink_count remote)
	run -0 _send --from sender@example.test --to fwd-ok@example.test \
		--subject "hello remote"
	_sink_wait remote $((before + 1))
	run -0 __sink_last_json remote
	assert_output --partial '"mail_from": "sender@example.test"'
	assert_output --partial '"rcpt_tos": ["bob@remote.test"]'
	# SIZE is offered by aiosmtpd, DSN is not: no NOTIFY/ORCPT sent.
	assert_output --partial 'SIZE='
	refute_output --partial 'NOTIFY'
	local eml
	eml=$(__sink_last_eml remote)
	# Our Received header travels; our Return-Path does not (RFC 5321 §4.4).
	run -0 grep -c '^Received: ' "$eml"
	run -1 grep -i '^Return-Path:' "$eml"
	run -0 grep -F 'Subject: hello remote' "$eml"
	# Dot-stuffing was undone by the sink: the line starts with one dot.
	run -0 grep -x $'.leading dot line\r' "$eml"
	_queue_wait_count 0
	_log_wait "queue delivered rcpt=<bob@remote.test> relay=mx.remote.test[127.0.0.2]:$MX_PORT"
	_log_wait "queue removed"
}

@test "several recipients at one domain go in one transaction" {
	local before
	before=$(_sink_count remote)
	run -0 _send --from sender@example.test --to fwd-multi@example.test
	_sink_wait remote $((before + 1))
	sleep 1
	# Exactly one more message, carrying all three recipients.
	[[ $(_sink_count remote) -eq $((before + 1)) ]]
	run -0 __sink_last_json remote
	assert_output --partial '"rcpt_tos": ["a@remote.test", "b@remote.test", "c@remote.test"]'
	_queue_wait_count 0
}

@test "a 550 from the MX bounces into the sender's mailbox, read over POP3" {
	run -0 _send --from sender@example.test --to fwd-reject@example.test \
		--subject "will bounce" --mail-opt ENVID=QQ314 \
		--rcpt-opt NOTIFY=FAILURE
	_mail_wait sender@example.test
	_queue_wait_count 0
	local f="$BATS_FILE_TMPDIR/bounce.eml"
	_pop3_fetch_newest "$f"
	run -0 _dsn_fields "$f"
	assert_line 'content_type=multipart/report'
	assert_line 'report_type=delivery-status'
	assert_line 'subject=Undelivered Mail Returned to Sender'
	assert_line 'to=<sender@example.test>'
	assert_line 'auto_submitted=auto-replied'
	assert_line 'parts=3'
	assert_line 'part1=text/plain'
	assert_line 'part2=message/delivery-status'
	assert_line 'part3=message/rfc822'
	assert_line 'reporting_mta=dns; mx.example.test'
	assert_line 'original_envelope_id=QQ314'
	assert_line 'rcpt.1.final_recipient=rfc822; reject1@remote.test'
	assert_line 'rcpt.1.original_recipient=rfc822; fwd-reject@example.test'
	assert_line 'rcpt.1.action=failed'
	assert_line 'rcpt.1.status=5.1.1'
	assert_line 'rcpt.1.remote_mta=dns; mx.remote.test'
	assert_line --partial 'rcpt.1.diagnostic_code=smtp; 550 5.1.1 <reject1@remote.test>'
	assert_line 'returned_subject=will bounce'
	assert_line 'returned_has_body=yes'
	# The bounce itself has the null reverse-path.
	run -0 grep -m1 '^Return-Path:' "$(_only_mail sender@example.test)"
	assert_output 'Return-Path: <>'
}

@test "only the refused recipient of a mixed delivery is reported" {
	local before
	before=$(_sink_count remote)
	run -0 _send --from sender@example.test --to fwd-mixed@example.test
	_sink_wait remote $((before + 1))
	_mail_wait sender@example.test
	local f="$BATS_FILE_TMPDIR/mixed.eml"
	_pop3_fetch_newest "$f"
	run -0 _dsn_fields "$f"
	assert_line 'rcpt.1.final_recipient=rfc822; reject2@remote.test'
	refute_line --partial 'rcpt.2.'
	run -0 __sink_last_json remote
	assert_output --partial '"rcpt_tos": ["ok1@remote.test"]'
	_queue_wait_count 0
}

@test "RET=HDRS returns only the header of the original" {
	run -0 _send --from sender@example.test --to fwd-reject@example.test \
		--subject "headers only" --mail-opt RET=HDRS
	_mail_wait sender@example.test
	local f="$BATS_FILE_TMPDIR/hdrs.eml"
	_pop3_fetch_newest "$f"
	run -0 _dsn_fields "$f"
	assert_line 'part3=text/rfc822-headers'
	assert_line 'returned_subject=headers only'
	assert_line 'returned_has_body=no'
	run -1 grep -F 'Hello from the outbound tests' "$f"
}

@test "NOTIFY=NEVER: a refused recipient produces no bounce" {
	run -0 _send --from sender@example.test --to fwd-reject@example.test \
		--rcpt-opt NOTIFY=NEVER
	_log_wait "queue bounced rcpt=<reject1@remote.test>"
	_queue_wait_count 0
	sleep 1
	[[ $(_count_new sender@example.test) -eq 0 ]]
}

@test "the null sender never gets a bounce" {
	run -0 _send --from '' --to fwd-reject@example.test
	_log_wait "queue bounced rcpt=<reject1@remote.test>"
	_queue_wait_count 0
	sleep 1
	[[ $(_count_new sender@example.test) -eq 0 ]]
	run -1 __log_has "dsn-sent"
}

@test "NOTIFY=SUCCESS to a server without DSN gives a 'relayed' report" {
	local before
	before=$(_sink_count remote)
	run -0 _send --from sender@example.test --to fwd-ok@example.test \
		--rcpt-opt NOTIFY=SUCCESS,FAILURE --subject "tell me"
	_sink_wait remote $((before + 1))
	_mail_wait sender@example.test
	_queue_wait_count 0
	local f="$BATS_FILE_TMPDIR/success.eml"
	_pop3_fetch_newest "$f"
	run -0 _dsn_fields "$f"
	assert_line 'subject=Successful Mail Delivery Report'
	assert_line 'rcpt.1.final_recipient=rfc822; bob@remote.test'
	assert_line 'rcpt.1.action=relayed'
	assert_line 'rcpt.1.status=2.0.0'
	# No RET: a success report returns the headers only.
	assert_line 'part3=text/rfc822-headers'
	assert_line 'returned_subject=tell me'
}

@test "a bounce for a remote sender goes out through the queue" {
	local before
	before=$(_sink_count remote)
	run -0 _send --from alice@remote.test --to fwd-reject@example.test
	# The DSN arrives at remote.test's MX from <> to the sender.
	_sink_wait remote $((before + 1))
	run -0 __sink_last_json remote
	assert_output --partial '"mail_from": "<>"'
	assert_output --partial '"rcpt_tos": ["alice@remote.test"]'
	run -0 _dsn_fields "$(__sink_last_eml remote)"
	assert_line 'rcpt.1.final_recipient=rfc822; reject1@remote.test'
	assert_line 'rcpt.1.action=failed'
	_queue_wait_count 0
}

@test "Null MX (RFC 7505): immediate bounce, no connection" {
	run -0 _send --from sender@example.test --to fwd-nullmx@example.test
	_mail_wait sender@example.test
	local f="$BATS_FILE_TMPDIR/nullmx.eml"
	_pop3_fetch_newest "$f"
	run -0 _dsn_fields "$f"
	assert_line 'rcpt.1.final_recipient=rfc822; x@nullmx.test'
	assert_line 'rcpt.1.action=failed'
	assert_line 'rcpt.1.status=5.1.10'
	assert_line --partial 'null MX'
	refute_line --partial 'rcpt.1.remote_mta'
	_queue_wait_count 0
}

@test "a domain that does not exist bounces" {
	run -0 _send --from sender@example.test --to fwd-nx@example.test
	_mail_wait sender@example.test
	local f="$BATS_FILE_TMPDIR/nx.eml"
	_pop3_fetch_newest "$f"
	run -0 _dsn_fields "$f"
	assert_line 'rcpt.1.final_recipient=rfc822; x@nx.test'
	assert_line 'rcpt.1.status=5.1.2'
	_queue_wait_count 0
}

@test "a domain without MX is delivered to its A record (implicit MX)" {
	local before
	before=$(_sink_count plain)
	run -0 _send --from sender@example.test --to fwd-plain@example.test
	_sink_wait plain $((before + 1))
	run -0 __sink_last_json plain
	assert_output --partial '"rcpt_tos": ["z@plain.test"]'
	_queue_wait_count 0
}

@test "opportunistic STARTTLS is used when the MX offers it" {
	local before
	before=$(_sink_count tls)
	run -0 _send --from sender@example.test --to fwd-tls@example.test
	_sink_wait tls $((before + 1))
	run -0 __sink_last_json tls
	assert_output --partial '"tls": true'
	_log_wait "queue delivered rcpt=<t@tls.test>"
	run -0 _log_since_test_start
	assert_output --partial 'tls=TLSv1.3'
	_queue_wait_count 0
}
