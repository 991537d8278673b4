#!/usr/bin/env bats
# Recipient resolution at RCPT: mailboxes, aliases (one and several local
# targets), catch-all, unknown, disabled and over-quota mailboxes, and
# posternctl changes that the running daemon must see at once.

load helpers/common
load helpers/daemon
load helpers/smtp

setup_file() {
	_daemon_setup_file
	_add_domain example.test
	_add_domain catch.test
	local u
	for u in alice bob carol quota disabled; do
		_add_mailbox "$u@example.test" "$u-secret"
	done
	_add_mailbox dave@catch.test dave-secret
	_add_mailbox erin@catch.test erin-secret
	_add_alias info@example.test alice@example.test
	_add_alias team@example.test alice@example.test bob@example.test carol@example.test
	_add_alias @catch.test dave@catch.test
}

teardown_file() { _daemon_teardown_file; }
setup() { _test_setup; }
teardown() { _test_teardown; }

# Runs MAIL and one RCPT, then QUIT; the replies land in $output (the RCPT
# reply is _reply_text 3).
# @param $1 recipient
__rcpt_session() {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		"L:RCPT TO:<$1>" R 'L:QUIT' R
}

# Like __rcpt_session for a recipient that must be refused: also tries
# DATA, which must find no recipient (554 5.5.1).
# @param $1 recipient
__refused_session() {
	run -0 _smtp_ehlo_raw 'L:MAIL FROM:<sender@remote.test>' R \
		"L:RCPT TO:<$1>" R 'L:DATA' R 'L:QUIT' R
}

@test "an unknown user is 550 5.1.1 and nothing is stored" {
	local before
	before=$(_count_all_mail)
	__refused_session nobody@example.test
	_assert_replies 220 250 '250 2.1.0' '550 5.1.1' '554 5.5.1' '221 2.0.0'
	assert_equal "$(_count_all_mail)" "$before"
	[[ ! -e $DATA_DIR/mail/example.test/nobody ]] || fail "a maildir was made for an unknown user"
}

@test "an alias with one target delivers to that mailbox" {
	_clear_mailbox alice@example.test
	run -0 _smtp_send_text s@remote.test info@example.test "to info"
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new alice@example.test)" 1
	[[ ! -e $DATA_DIR/mail/example.test/info ]] || fail "a maildir was made for the alias itself"
}

@test "an alias with several targets gives each one copy, hard-linked" {
	local u
	for u in alice bob carol; do _clear_mailbox "$u@example.test"; done
	run -0 _smtp_send_text s@remote.test team@example.test "to team"
	assert_output --partial '250 2.0.0 Ok: queued as'
	local inodes=()
	for u in alice bob carol; do
		assert_equal "$(_count_new "$u@example.test")" 1
		inodes+=("$(stat -c %i "$(_only_mail "$u@example.test")")")
	done
	assert_equal "${inodes[1]}" "${inodes[0]}"
	assert_equal "${inodes[2]}" "${inodes[0]}"
}

@test "the catch-all takes unknown local parts of its domain" {
	_clear_mailbox dave@catch.test
	run -0 _smtp_send_text s@remote.test whoever@catch.test "catch-all"
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new dave@catch.test)" 1
}

@test "an existing mailbox wins over the catch-all" {
	_clear_mailbox dave@catch.test
	_clear_mailbox erin@catch.test
	run -0 _smtp_send_text s@remote.test erin@catch.test "to erin"
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new erin@catch.test)" 1
	assert_equal "$(_count_new dave@catch.test)" 0
}

@test "a catch-all does not cover other domains" {
	__refused_session whoever@example.test
	_assert_replies 220 250 '250 2.1.0' '550 5.1.1' '554 5.5.1' '221 2.0.0'
}

@test "a disabled mailbox is 550 5.2.1 and nothing is stored" {
	run -0 _ctl mailbox disable disabled@example.test
	local before
	before=$(_count_all_mail)
	__refused_session disabled@example.test
	_assert_replies 220 250 '250 2.1.0' '550 5.2.1' '554 5.5.1' '221 2.0.0'
	assert_equal "$(_count_all_mail)" "$before"
	run -0 _ctl mailbox enable disabled@example.test
	run -0 _smtp_send_text s@remote.test disabled@example.test "enabled again"
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new disabled@example.test)" 1
}

@test "a mailbox over its quota is 552 5.2.2 and nothing is stored" {
	_clear_mailbox quota@example.test
	run -0 _smtp_send_text s@remote.test quota@example.test "fills the quota"
	assert_output --partial '250 2.0.0 Ok: queued as'
	run -0 _ctl mailbox quota quota@example.test 10
	local before
	before=$(_count_all_mail)
	__refused_session quota@example.test
	_assert_replies 220 250 '250 2.1.0' '552 5.2.2' '554 5.5.1' '221 2.0.0'
	assert_equal "$(_count_all_mail)" "$before"
	# 0 means unlimited again
	run -0 _ctl mailbox quota quota@example.test 0
	__rcpt_session quota@example.test
	_assert_reply 3 '^250 2\.1\.5'
}

@test "a mailbox added with posternctl is seen by the running daemon at once" {
	__rcpt_session newbie@example.test
	_assert_reply 3 '^550 5\.1\.1'
	_add_mailbox newbie@example.test newbie-secret
	run -0 _smtp_send_text s@remote.test newbie@example.test "welcome"
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new newbie@example.test)" 1
}

@test "a mailbox deleted with posternctl is refused at once" {
	_add_mailbox leaver@example.test leaver-secret
	__rcpt_session leaver@example.test
	_assert_reply 3 '^250 2\.1\.5'
	run -0 _ctl mailbox del leaver@example.test
	__rcpt_session leaver@example.test
	_assert_reply 3 '^550 5\.1\.1'
}

@test "aliases added and deleted with posternctl take effect at once" {
	_clear_mailbox bob@example.test
	__rcpt_session sales@example.test
	_assert_reply 3 '^550 5\.1\.1'
	_add_alias sales@example.test bob@example.test
	run -0 _smtp_send_text s@remote.test sales@example.test "to sales"
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new bob@example.test)" 1
	run -0 _ctl alias del sales@example.test
	__rcpt_session sales@example.test
	_assert_reply 3 '^550 5\.1\.1'
}

@test "a domain added with posternctl becomes local at once" {
	__rcpt_session zed@fresh.test
	_assert_reply 3 '^554 5\.7\.1'
	_add_domain fresh.test
	_add_mailbox zed@fresh.test zed-secret
	run -0 _smtp_send_text s@remote.test zed@fresh.test "fresh domain"
	assert_output --partial '250 2.0.0 Ok: queued as'
	assert_equal "$(_count_new zed@fresh.test)" 1
}

@test "a password change does not need a restart (POP3 sees it)" {
	run -0 _ctl_passwd carol@example.test changed-secret
	run -0 "$PY" "$TOOLS/pop3_fetch.py" --port "$POP3_PORT" \
		--user carol@example.test --password changed-secret stat
	assert_output --regexp '^[0-9]+ [0-9]+'
}
