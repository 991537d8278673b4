#!/usr/bin/env bats
# posternd --check-config: every problem reported as FILE:LINE: message and
# exit 1; a good file prints "configuration OK" and exits 0. posternd
# refuses to start on a bad file.

load helpers/common

setup_file() {
	[[ -x $POSTERND ]] || {
		echo "build/posternd is missing: run make" >&2
		return 1
	}
}

# Writes a config file and prints its path.
# @param $1 file name under the test's tmpdir
# (content on stdin)
__write_conf() {
	local f="$BATS_TEST_TMPDIR/$1"
	cat >"$f"
	printf '%s\n' "$f"
}

@test "a good config passes: exit 0 and 'configuration OK'" {
	local ports conf
	ports=$(_free_ports 2)
	conf=$(__write_conf good.conf <<EOF
[server]
hostname = mx.example.test
data_dir = $BATS_TEST_TMPDIR/data
max_connections = 100
max_connections_per_ip = 10
worker_threads = 2

[log]
level = info

[smtp]
listen = 127.0.0.1:${ports% *}, [::1]:${ports% *}
max_message_size = 10M
max_recipients = 50
max_command_line = 512
max_text_line = 1000
max_bad_commands = 10
max_unknown_recipients = 10
idle_timeout = 300
data_timeout = 600
pregreet_wait = 0
pregreet_action = reject

[pop3]
listen = 127.0.0.1:${ports#* }
max_command_line = 255
max_bad_commands = 5
idle_timeout = 600
auth_fail_delay = 2000
allow_plaintext_auth = yes
EOF
	)
	run -0 "$POSTERND" -c "$conf" --check-config
	assert_output --partial 'configuration OK'
}

@test "every problem is reported with FILE:LINE and the exit status is 1" {
	local conf
	conf=$(__write_conf bad.conf <<'EOF'
[server]
hostname = mx.example.test
no_such_key = 1
max_connections = lots

[smtp]
listen = 127.0.0.1
max_message_size = 12Q
pregreet_action = maybe

[nosuchsection]
foo = bar

[pop3]
allow_plaintext_auth = perhaps
this line has no equals sign
EOF
	)
	run -1 "$POSTERND" -c "$conf" --check-config
	assert_line --partial "$conf:3:"
	assert_line --partial "$conf:4:"
	assert_line --partial "$conf:7:"
	assert_line --partial "$conf:8:"
	assert_line --partial "$conf:9:"
	assert_output --regexp "$conf:1[12]:"
	assert_line --partial "$conf:15:"
	assert_line --partial "$conf:16:"
	refute_output --partial 'configuration OK'
}

@test "each message names the key or value at fault" {
	local conf
	conf=$(__write_conf named.conf <<'EOF'
[smtp]
max_recipients = -5
idle_timeout = soon
EOF
	)
	run -1 "$POSTERND" -c "$conf" --check-config
	assert_line --regexp "^$conf:2: .*(max_recipients|-5)"
	assert_line --regexp "^$conf:3: .*(idle_timeout|soon)"
}

@test "a missing config file is an error naming the file" {
	run -1 "$POSTERND" -c "$BATS_TEST_TMPDIR/does-not-exist.conf" --check-config
	assert_output --partial 'does-not-exist.conf'
}

@test "posternd refuses to start on a bad config" {
	local conf
	conf=$(__write_conf start.conf <<EOF
[server]
data_dir = $BATS_TEST_TMPDIR/data
[smtp]
listen = 127.0.0.1:notaport
EOF
	)
	run timeout 20 "$POSTERND" -c "$conf"
	assert_failure
	((status != 124)) || fail "posternd kept running on a bad config"
	assert_output --regexp "($conf:4:|notaport)"
}

@test "the shipped example config passes --check-config" {
	local f
	for f in "$REPO_ROOT/packaging/postern.conf" "$REPO_ROOT/packaging/postern.conf.example"; do
		[[ -f $f ]] && break
	done
	[[ -f $f ]] || skip "packaging/postern.conf is not there yet"
	run -0 "$POSTERND" -c "$f" --check-config
	assert_output --partial 'configuration OK'
}
