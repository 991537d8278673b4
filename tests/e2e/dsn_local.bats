#!/usr/bin/env bats
# Success notifications (RFC 3461 §4.1 NOTIFY=SUCCESS) for recipients that
# Postern delivers itself into a local Maildir: an RFC 3464 report with
# "Action: delivered" to the envelope sender, ORCPT and ENVID echoed, the
# header of the message attached (RFC 3461 §4.3), never for the null
# sender, into the sender's POP3 mailbox or through the queue to a remote
# sender's MX. The reports travel through the outbound queue, so this file
# uses the queue's DNS and sink set-up (tools/outbound.bash).

load helpers/common
load helpers/daemon
load helpers/smtp
load tools/outbound

setup_file() {
	_outbound_setup_file || return 1
	[[ -z ${OUTBOUND_SKIP:-} ]] || return 0
	_add_mailbox rcpt@example.test secret || return 1
	_add_mailbox other@example.test secret || return 1
	_add_mailbox third@example.test secret || return 1
	_add_alias both@example.test rcpt@example.test bob@remote.test ||
		return 1
}

teardown_file() {
	_outbound_teardown_file
}

setup() {
	_outbound_setup
	local a
	for a in sender rcpt other third; do
		_clear_mailbox "$a@example.test"
	done
}

teardown() {
	_test_teardown
}

# Sends one message to rcpt@example.test from sender@example.test with
# python3 smtplib, unauthenticated, on the MX port.
# @param $@ further send_mail.py options
__send_local() {
	_send --from sender@example.test --to rcpt@example.test "$@"
}

# Sends a message by an exact SMTP transcript (no AUTH) and prints the
# replies: MAIL with the given parameters, one RCPT per argument.
# @param $1 MAIL FROM argument, e.g. "<sender@example.test> RET=HDRS"
# @param $@ RCPT TO arguments
__send_raw() {
	local from=$1 r
	shift
	local -a steps=("L:MAIL FROM:$from" R)
	for r in "$@"; do
		steps+=("L:RCPT TO:$r" R)
	done
	steps+=('L:DATA' R
		'S:From: <sender@example.test>\r\nSubject: raw dsn\r\n\r\nraw body line\r\n.\r\n'
		R 'L:QUIT' R)
	_smtp_ehlo_raw "${steps[@]}"
}

# Waits for the one report in sender@example.test's mailbox, fetches it
# over POP3 and prints the file name.
# @param $1 file name under $BATS_FILE_TMPDIR
__fetch_report() {
	_mail_wait sender@example.test >/dev/null || return 1
	_pop3_fetch_newest "$BATS_FILE_TMPDIR/$1"
}

# kill -9 the daemon and wait until it is gone.
__daemon_kill9() {
	local pid
	pid=$(_daemon_pid)
	kill -KILL "$pid"
	_repeat_until_timeout 10 eval "! __pid_alive $pid"
	wait "$pid" 2>/dev/null || true
	rm -f "$BATS_FILE_TMPDIR/posternd.pid"
}

@test "EHLO on the MX port advertises DSN to an unauthenticated client" {
	run -0 _smtp_ehlo_raw 'L:QUIT' R
	assert_line '250-DSN'
	refute_line --partial 'AUTH'
}

@test "NOTIFY=SUCCESS to a local mailbox: the sender reads a 'delivered' report over POP3" {
	run -0 __send_local --subject "please confirm" \
		--mail-opt RET=HDRS --mail-opt ENVID=abc \
		--rcpt-opt NOTIFY=SUCCESS --rcpt-opt ORCPT=rfc822\;x@example.test
	_mail_wait rcpt@example.test >/dev/null
	local f
	f=$(__fetch_report success.eml)
	run -0 _dsn_fields "$f"
	assert_line 'content_type=multipart/report'
	assert_line 'report_type=delivery-status'
	assert_line 'subject=Successful Mail Delivery Report'
	assert_line 'to=<sender@example.test>'
	assert_line 'auto_submitted=auto-replied'
	assert_line 'parts=3'
	assert_line 'part1=text/plain'
	assert_line 'part2=message/delivery-status'
	assert_line 'part3=text/rfc822-headers'
	assert_line 'reporting_mta=dns; mx.example.test'
	assert_line 'original_envelope_id=abc'
	assert_line 'rcpt.1.final_recipient=rfc822; rcpt@example.test'
	assert_line 'rcpt.1.original_recipient=rfc822; x@example.test'
	assert_line 'rcpt.1.action=delivered'
	assert_line 'rcpt.1.status=2.0.0'
	# Nobody else was involved: no Remote-MTA.
	refute_line --partial 'rcpt.1.remote_mta='
	refute_line --partial 'rcpt.2.'
	assert_line 'returned_subject=please confirm'
	assert_line 'returned_has_body=no'
	run -1 grep -F 'Hello from the outbound tests' "$f"
	# The report has the null reverse-path and leaves nothing queued.
	run -0 grep -m1 '^Return-Path:' "$(_only_mail sender@example.test)"
	assert_output 'Return-Path: <>'
	_queue_wait_count 0
	_log_wait "queue dsn-sent to=<sender@example.test> nrcpt=1"
}

@test "an unauthenticated client's xtext ORCPT and ENVID come back decoded" {
	run -0 __send_raw '<sender@example.test> RET=HDRS ENVID=QQ+2B1' \
		'<rcpt@example.test> NOTIFY=SUCCESS ORCPT=rfc822;x+2Bdsn@example.test'
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' 354 '250 2.0.0' \
		'221 2.0.0'
	local f
	f=$(__fetch_report xtext.eml)
	run -0 _dsn_fields "$f"
	assert_line 'original_envelope_id=QQ+1'
	assert_line 'rcpt.1.original_recipient=rfc822; x+dsn@example.test'
	assert_line 'rcpt.1.action=delivered'
	assert_line 'returned_subject=raw dsn'
}

@test "RET=FULL or no RET: a success report returns only the header (RFC 3461 §4.3)" {
	local ret f
	for ret in FULL none; do
		local -a opt=()
		[[ $ret == none ]] || opt=(--mail-opt "RET=$ret")
		_clear_mailbox sender@example.test
		run -0 __send_local --subject "ret $ret" "${opt[@]}" \
			--rcpt-opt NOTIFY=SUCCESS
		f=$(__fetch_report "ret-$ret.eml")
		run -0 _dsn_fields "$f"
		assert_line 'rcpt.1.action=delivered'
		assert_line 'part3=text/rfc822-headers'
		assert_line "returned_subject=ret $ret"
		assert_line 'returned_has_body=no'
		run -1 grep -F 'Hello from the outbound tests' "$f"
	done
}

@test "NOTIFY=FAILURE,DELAY, NOTIFY=NEVER or no NOTIFY: no report" {
	run -0 __send_local --subject "no1" --rcpt-opt NOTIFY=FAILURE,DELAY
	run -0 __send_local --subject "no2" --rcpt-opt NOTIFY=NEVER
	run -0 __send_local --subject "no3"
	# A report asked for afterwards is the only one that comes.
	run -0 __send_local --subject "yes" --mail-opt ENVID=control \
		--rcpt-opt NOTIFY=SUCCESS
	_mail_wait rcpt@example.test 4 >/dev/null
	local f
	f=$(__fetch_report control.eml)
	_queue_wait_count 0
	sleep 1
	[[ $(_count_new sender@example.test) -eq 1 ]]
	run -0 _dsn_fields "$f"
	assert_line 'original_envelope_id=control'
	assert_line 'returned_subject=yes'
}

@test "the null sender never gets a success report" {
	run -0 _send --from '' --to rcpt@example.test --subject "from nobody" \
		--rcpt-opt NOTIFY=SUCCESS
	run -0 __send_local --subject "control" --mail-opt ENVID=control \
		--rcpt-opt NOTIFY=SUCCESS
	_mail_wait rcpt@example.test 2 >/dev/null
	local f
	f=$(__fetch_report null-control.eml)
	_queue_wait_count 0
	sleep 1
	[[ $(_count_new sender@example.test) -eq 1 ]]
	run -0 _dsn_fields "$f"
	assert_line 'original_envelope_id=control'
	run -1 __log_has "dsn-dropped"
}

@test "several local recipients: one report for exactly those that asked" {
	run -0 __send_raw '<sender@example.test> ENVID=multi' \
		'<rcpt@example.test> NOTIFY=SUCCESS' \
		'<other@example.test> NOTIFY=FAILURE' \
		'<third@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;t@example.test'
	_assert_replies 220 250 '250 2.1.0' '250 2.1.5' '250 2.1.5' \
		'250 2.1.5' 354 '250 2.0.0' '221 2.0.0'
	local f
	f=$(__fetch_report multi.eml)
	run -0 _dsn_fields "$f"
	assert_line 'original_envelope_id=multi'
	assert_line 'rcpt.1.final_recipient=rfc822; rcpt@example.test'
	assert_line 'rcpt.1.action=delivered'
	refute_line --partial 'rcpt.1.original_recipient='
	assert_line 'rcpt.2.final_recipient=rfc822; third@example.test'
	assert_line 'rcpt.2.original_recipient=rfc822; t@example.test'
	assert_line 'rcpt.2.action=delivered'
	refute_line --partial 'rcpt.3.'
	refute_line --partial 'other@example.test'
	[[ $(_count_new other@example.test) -eq 1 ]]
	_queue_wait_count 0
}

@test "a remote sender's success report goes out through the queue to its MX" {
	local before
	before=$(_sink_count remote)
	run -0 _send --from alice@remote.test --to rcpt@example.test \
		--subject "remote sender" --mail-opt ENVID=far \
		--rcpt-opt NOTIFY=SUCCESS
	_mail_wait rcpt@example.test >/dev/null
	_sink_wait remote $((before + 1))
	local dir n
	dir=$(_sink_dir remote)
	n=$(_sink_count remote)
	run -0 cat "$dir/msg-$n.json"
	assert_output --partial '"mail_from": "<>"'
	assert_output --partial '"rcpt_tos": ["alice@remote.test"]'
	run -0 _dsn_fields "$dir/msg-$n.eml"
	assert_line 'to=<alice@remote.test>'
	assert_line 'original_envelope_id=far'
	assert_line 'rcpt.1.final_recipient=rfc822; rcpt@example.test'
	assert_line 'rcpt.1.action=delivered'
	assert_line 'rcpt.1.status=2.0.0'
	assert_line 'returned_subject=remote sender'
	_queue_wait_count 0
}

@test "an alias to a local mailbox and a remote address: 'delivered' here, 'relayed' there" {
	local before
	before=$(_sink_count remote)
	run -0 _send --from sender@example.test --to both@example.test \
		--subject "both ways" --rcpt-opt NOTIFY=SUCCESS
	_mail_wait rcpt@example.test >/dev/null
	_sink_wait remote $((before + 1))
	_queue_wait_count 0
	# One report per step (usually two messages, the local one first).
	local f all=""
	for f in "$(_maildir_of sender@example.test)"/new/*; do
		all+=$(_dsn_fields "$f")$'\n'
	done
	run -0 echo "$all"
	assert_line --regexp '^rcpt\.[0-9]\.final_recipient=rfc822; both@example\.test$'
	assert_line --regexp '^rcpt\.[0-9]\.action=delivered$'
	assert_line --regexp '^rcpt\.[0-9]\.final_recipient=rfc822; bob@remote\.test$'
	assert_line --regexp '^rcpt\.[0-9]\.original_recipient=rfc822; both@example\.test$'
	assert_line --regexp '^rcpt\.[0-9]\.action=relayed$'
}

@test "a report that could not be delivered yet survives kill -9 and comes after restart" {
	local md
	md=$(_maildir_of sender@example.test)
	# The sender's Maildir cannot be written: the report stays owed.
	rm -rf "$md"
	echo "in the way" >"$md"
	run -0 __send_local --subject "after the crash" --mail-opt ENVID=crash \
		--rcpt-opt NOTIFY=SUCCESS
	_mail_wait rcpt@example.test >/dev/null
	_log_wait "queue dsn-failed to=<sender@example.test>"
	[[ $(_queue_count) -eq 1 ]]
	run -0 cat "$DATA_DIR"/queue/*.env
	assert_line 'rcpt rcpt@example.test'
	assert_line 'status sent'
	assert_line 'dsn owed'
	__daemon_kill9
	rm -f "$md"
	_test_setup
	_daemon_start
	_log_wait "queue started messages=1"
	local f
	f=$(__fetch_report crash.eml)
	run -0 _dsn_fields "$f"
	assert_line 'original_envelope_id=crash'
	assert_line 'rcpt.1.action=delivered'
	assert_line 'returned_subject=after the crash'
	_queue_wait_count 0
}
