#!/usr/bin/env bats
# Per-address message rate ([smtp] max_messages_per_ip, like Postfix's
# smtpd_client_message_rate_limit): once a client address has sent N
# messages within the hour, its next MAIL gets a temporary 450 4.7.1.

load helpers/common
load helpers/daemon
load helpers/smtp

setup_file() {
	_daemon_setup_file smtp.max_messages_per_ip=2
	_add_domain example.test
	_add_mailbox "rate@example.test" "rate-secret"
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

@test "a client address over max_messages_per_ip gets 450 4.7.1 at MAIL, and nothing is stored" {
	run -0 _smtp_send_text s@remote.test rate@example.test "one"
	assert_output --partial '250 2.0.0 Ok: queued as'
	run -0 _smtp_send_text s@remote.test rate@example.test "two"
	assert_output --partial '250 2.0.0 Ok: queued as'
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<s@remote.test>' R 'L:QUIT' R
	_assert_replies 220 250 '450 4.7.1' '221 2.0.0'
	assert_equal "$(_count_new rate@example.test)" 2
	run -0 _log_since_test_start
	assert_output --partial 'rate-limit addr=127.0.0.1'
}

@test "the limit counts per address: another loopback address still sends" {
	run -0 swaks --server 127.0.0.1 --port "$SMTP_PORT" --local-interface 127.0.0.9 \
		--from s@remote.test --to rate@example.test --body "from elsewhere"
	assert_output --partial '250 2.0.0 Ok: queued as'
}
