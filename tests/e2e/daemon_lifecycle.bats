#!/usr/bin/env bats
# The daemon's life: it creates data_dir, spool/ and mail/ when missing,
# logs its listeners, stops cleanly on SIGTERM and SIGINT (also with a
# client in the middle of DATA, which then stores nothing), keeps mail
# and accounts across a restart, and logs the durability barrier it uses.

load helpers/common
load helpers/daemon
load helpers/smtp
load helpers/pop3

setup_file() {
	_daemon_setup_file
	_add_domain example.test
	_add_mailbox alice@example.test alice-secret
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

# Succeeds once a process is gone (or a zombie).
# @param $1 pid
__gone() {
	! __pid_alive "$1"
}

# Sends a signal to the daemon, waits up to 10 s for it to exit, then
# starts it again on the same config and data.
# @param $1 signal name (TERM, INT)
__signal_and_restart() {
	local pid
	pid=$(_daemon_pid)
	kill -"$1" "$pid"
	_repeat_until_timeout 10 __gone "$pid" || return 1
	rm -f "$BATS_FILE_TMPDIR/posternd.pid"
	_daemon_start
}

@test "data_dir, spool/ and mail/ are created at start and the listeners logged" {
	[[ -d $DATA_DIR ]] || fail "no $DATA_DIR"
	[[ -d $DATA_DIR/spool ]] || fail "no $DATA_DIR/spool"
	[[ -d $DATA_DIR/mail ]] || fail "no $DATA_DIR/mail"
	run -0 cat "$DAEMON_LOG"
	assert_output --partial "listening smtp on 127.0.0.1:$SMTP_PORT"
	assert_output --partial "listening pop3 on 127.0.0.1:$POP3_PORT"
}

@test "SIGINT stops the daemon cleanly" {
	__signal_and_restart INT
	run -0 _smtp_raw 'L:QUIT' R
	_assert_replies 220 '221 2.0.0'
}

@test "SIGTERM with a client in the middle of DATA: the daemon exits, nothing is stored" {
	local before out="$BATS_TEST_TMPDIR/client.out" client
	before=$(_count_all_mail)
	_smtp_ehlo_raw --timeout 30 'L:MAIL FROM:<s@remote.test>' R \
		'L:RCPT TO:<alice@example.test>' R 'L:DATA' R \
		'S:Subject: interrupted\r\n\r\nhalf a message' E >"$out" 2>&1 3>&- &
	client=$!
	# wait until the daemon has answered DATA, so the session is mid-DATA
	_repeat_until_timeout 10 grep -q '^354' "$out"
	__signal_and_restart TERM
	wait "$client" || true
	run -0 cat "$out"
	assert_line -n -1 '<EOF>'
	refute_output --partial '250 2.0.0 Ok'
	assert_equal "$(_count_all_mail)" "$before"
}

@test "mail and accounts survive a restart" {
	_clear_mailbox alice@example.test
	run -0 _smtp_send_text s@remote.test alice@example.test "before restart"
	assert_output --partial '250 2.0.0 Ok: queued as'
	_daemon_restart
	run -0 _pop3 alice@example.test alice-secret stat
	assert_line -n 0 --regexp '^1 [0-9]+$'
}

@test "durability = auto logs its barrier: syncfs on a local disk file system, else fsync" {
	local want=fsync
	case $(stat -f -c %T "$DATA_DIR") in
	ext2/ext3 | xfs | btrfs | f2fs | tmpfs) want=syncfs ;;
	esac
	run -0 cat "$DAEMON_LOG"
	assert_output --partial "delivery: durability barrier $want"
	# A forced mode wins, and mail is still delivered with it.
	_daemon_write_config server.durability=fsync
	_daemon_restart
	run -0 _log_since_test_start
	assert_output --partial "delivery: durability barrier fsync"
	_clear_mailbox alice@example.test
	run -0 _smtp_send_text s@remote.test alice@example.test "fsync mode"
	assert_output --partial '250 2.0.0 Ok: queued as'
	[[ $(_count_new alice@example.test) -eq 1 ]]
	_daemon_write_config
	_daemon_restart
}
