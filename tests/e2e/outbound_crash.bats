#!/usr/bin/env bats
# The queue survives kill -9: what was accepted with a 250 is delivered
# after a restart, and what a crash left half-written is cleaned up.

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
}

teardown() {
	_test_teardown
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

# Prints the subjects of every message a sink holds, sorted, unique.
# @param $1 sink name
__sink_subjects() {
	grep -h '^Subject: ' "$(_sink_dir "$1")"/msg-*.eml 2>/dev/null |
		tr -d '\r' | sort -u
}

@test "kill -9 with mail in the queue, restart: everything is delivered" {
	local k
	for k in 1 2 3; do
		_send --from sender@example.test --to fwd-down@example.test \
			--subject "crash $k" >/dev/null || fail "send $k refused"
	done
	_queue_wait_count 3
	_log_wait "queue deferred rcpt=<y@down.test>"
	__daemon_kill9
	# Leftovers of a crash in the middle of a store and of a rewrite.
	echo "half" >"$DATA_DIR/queue/00000000000000aa.msg"
	echo "postern-queue 1" >"$DATA_DIR/queue/00000000000000bb.env.tmp"
	_test_setup
	_daemon_start
	_log_wait "queue started messages=3"
	run -0 _log_since_test_start
	assert_output --partial 'removed message without envelope file=00000000000000aa.msg'
	assert_output --partial 'removed unfinished envelope file=00000000000000bb.env.tmp'
	[[ ! -e $DATA_DIR/queue/00000000000000aa.msg ]]
	[[ ! -e $DATA_DIR/queue/00000000000000bb.env.tmp ]]
	_sink_start down 127.0.0.3
	_sink_wait down 3 30
	_queue_wait_count 0
	run -0 __sink_subjects down
	assert_output "Subject: crash 1
Subject: crash 2
Subject: crash 3"
	_sink_stop down
}

@test "kill -9 during deliveries loses no accepted message" {
	# (bats' run clobbers a variable named i: loops here avoid both.)
	local k n=20
	for ((k = 1; k <= n; k++)); do
		_send --from sender@example.test --to fwd-ok@example.test \
			--subject "burst $k" >/dev/null || fail "send $k refused"
		if ((k == n / 2)); then
			__daemon_kill9
			_daemon_start
		fi
	done
	# Every accepted message arrives, possibly twice (at least once).
	_repeat_until_timeout 60 eval \
		'(($(__sink_subjects remote | grep -c "burst") == n))'
	_queue_wait_count 0
}

@test "a corrupt envelope is quarantined at start, not deleted" {
	__daemon_kill9
	echo "x" >"$DATA_DIR/queue/00000000000000cc.msg"
	printf 'postern-queue 1\nid 00000000000000cc\n' \
		>"$DATA_DIR/queue/00000000000000cc.env"
	_test_setup
	_daemon_start
	_log_wait "queue started"
	run -0 _log_since_test_start
	assert_output --partial '00000000000000cc queue corrupt-envelope'
	[[ -e $DATA_DIR/queue/corrupt/00000000000000cc.env ]]
	[[ -e $DATA_DIR/queue/corrupt/00000000000000cc.msg ]]
	[[ $(_queue_count) -eq 0 ]]
}
