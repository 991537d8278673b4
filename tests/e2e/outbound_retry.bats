#!/usr/bin/env bats
# Temporary failures: a 451 and then success, a remote MX that is down
# until it comes up, "posternctl queue" on a message waiting for its next
# attempt, and expiry after the maximum queue lifetime (with its bounce).
# The test schedule retries after 1 s, then every 2 s.

load helpers/common
load helpers/daemon
load tools/outbound

setup_file() {
	_outbound_setup_file
}

teardown_file() {
	_outbound_teardown_file
}

setup() {
	_outbound_setup
	_clear_mailbox sender@example.test
	_sink_mode remote accept
}

teardown() {
	_test_teardown
}

# Prints the id of the only message in the queue.
__only_queue_id() {
	local files
	mapfile -t files < <(find "$DATA_DIR/queue" -maxdepth 1 -name '*.env')
	((${#files[@]} == 1)) || {
		echo "expected one queued message, found ${#files[@]}" >&2
		return 1
	}
	basename "${files[0]}" .env
}

@test "a 451 is retried on the short schedule and then delivered" {
	local before
	before=$(_sink_count remote)
	_sink_mode remote tempfail:1
	run -0 _send --from sender@example.test --to fwd-ok@example.test
	_log_wait "queue deferred rcpt=<bob@remote.test>"
	run -0 _log_since_test_start
	assert_output --partial 'reply="451 4.7.1 <bob@remote.test>: Greylisted'
	# Still queued, with the reply and one attempt recorded.
	run -0 _ctl queue list
	assert_output --partial 'pending=1 sent=0 failed=0'
	_sink_wait remote $((before + 1)) 20
	_log_wait "queue delivered rcpt=<bob@remote.test>"
	run -0 _log_since_test_start
	assert_output --partial 'attempts=2'
	_queue_wait_count 0
	# Delivered in the end: no bounce.
	[[ $(_count_new sender@example.test) -eq 0 ]]
}

@test "an MX that is down: queued, then delivered once it comes up" {
	run -0 _send --from sender@example.test --to fwd-down@example.test
	_log_wait "queue deferred rcpt=<y@down.test>"
	run -0 _log_since_test_start
	assert_output --partial 'Connection refused'
	local id
	id=$(__only_queue_id)
	run -0 _ctl queue show "$id"
	assert_output --partial 'recipient: <y@down.test>'
	assert_output --partial '  status: pending'
	assert_output --partial 'last reply: 451 4.4.1 connect to mx.down.test[127.0.0.3]'
	_sink_start down 127.0.0.3
	_sink_wait down 1 20
	_queue_wait_count 0
	run -0 cat "$(_sink_dir down)/msg-1.json"
	assert_output --partial '"rcpt_tos": ["y@down.test"]'
	_sink_stop down
}

@test "posternctl queue hold, release, flush and delete" {
	run -0 _send --from sender@example.test --to fwd-defer@example.test
	_log_wait "queue deferred rcpt=<defer1@remote.test>"
	local id
	id=$(__only_queue_id)

	run -0 _ctl queue hold "$id"
	_log_wait "$id queue held"
	run -0 _ctl queue list
	assert_output --partial "$id"
	assert_output --partial 'held'
	# No attempts while held.
	local mark
	mark=$(_log_since_test_start | grep -c "queue deferred rcpt=<defer1@")
	sleep 4
	[[ $(_log_since_test_start | grep -c "queue deferred rcpt=<defer1@") -eq $mark ]]

	run -0 _ctl queue release "$id"
	_log_wait "$id queue released"
	run -0 _ctl queue flush
	_log_wait "queue flush requested"
	_repeat_until_timeout 10 eval \
		'(($(_log_since_test_start | grep -c "queue deferred rcpt=<defer1@") > mark))'

	run -0 _ctl queue delete "$id"
	_log_wait "$id queue removed by administrator"
	_queue_wait_count 0
	run -1 _ctl queue show "$id"
	assert_output --partial 'no such message'
	run -1 _ctl queue hold 0123456789abcdef
	# Deleted without a bounce.
	sleep 1
	[[ $(_count_new sender@example.test) -eq 0 ]]
}

@test "a message past its lifetime expires with a bounce" {
	# Restart with a lifetime of 3 seconds.
	_daemon_stop
	OUTBOUND_MAX_LIFETIME=3 _outbound_write_config
	_test_setup
	_daemon_start
	run -0 _send --from sender@example.test --to fwd-defer@example.test \
		--subject "too late"
	_log_wait "queue expired rcpt=<defer1@remote.test>" 20
	_mail_wait sender@example.test
	_queue_wait_count 0
	local f="$BATS_FILE_TMPDIR/expired.eml"
	_pop3_fetch_newest "$f"
	run -0 _dsn_fields "$f"
	assert_line 'rcpt.1.final_recipient=rfc822; defer1@remote.test'
	assert_line 'rcpt.1.action=failed'
	assert_line 'rcpt.1.status=4.4.7'
	assert_line --partial 'rcpt.1.diagnostic_code=smtp; 451 4.7.1 <defer1@remote.test>'
	assert_line 'returned_subject=too late'
}
