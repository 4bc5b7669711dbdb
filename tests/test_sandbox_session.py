"""The persistent shell session, run against every sandbox kind (``any_sandbox``)."""

from __future__ import annotations

import pytest

from agentkit.sandboxes import ExecResult


async def test_cd_and_export_persist(any_sandbox):
    r = await any_sandbox.run("mkdir -p sub/dir && cd sub && export AK_VALUE='a b'")
    assert r.exit_code == 0
    r = await any_sandbox.run('pwd; echo "$AK_VALUE"')
    assert r.output.splitlines() == [f"{any_sandbox.workspace}/sub", "a b"]


async def test_exit_code_and_interleaved_streams(any_sandbox):
    r = await any_sandbox.run("echo one; echo two >&2; echo three; exit_status() { return 7; }; exit_status")
    assert isinstance(r, ExecResult)
    assert r.exit_code == 7
    assert r.output == "one\ntwo\nthree\n"
    assert not r.timed_out and not r.truncated and not r.restarted


async def test_output_without_trailing_newline_is_exact(any_sandbox):
    assert (await any_sandbox.run("printf abc")).output == "abc"
    assert (await any_sandbox.run("printf 'abc\\n\\n'")).output == "abc\n\n"
    assert (await any_sandbox.run("true")).output == ""


async def test_quoting_of_awkward_commands(any_sandbox):
    cmd = "printf '%s|' \"it's\" 'back\\slash' \"$((6*7))\" $'tab\\there'; echo"
    r = await any_sandbox.run(cmd)
    assert r.output == "it's|back\\slash|42|tab\there|\n"
    heredoc = "cat <<'EOF'\nline one\n  $NOT_EXPANDED\nEOF"
    assert (await any_sandbox.run(heredoc)).output == "line one\n  $NOT_EXPANDED\n"


async def test_fake_sentinels_and_prompts_do_not_end_a_command(any_sandbox):
    # Output that looks like a prompt or like a sentinel of ours, then more output.
    cmd = ("printf '$ \\n>>> \\nroot@host:/# \\n__AGENTKIT_deadbeef:0:/\\n\\n__AGENTKIT_'; "
           "sleep 0.2; echo after")
    r = await any_sandbox.run(cmd)
    assert r.exit_code == 0
    assert r.output.endswith("__AGENTKIT_after\n")
    assert "root@host:/# " in r.output


async def test_set_x_does_not_leak_the_sentinel(any_sandbox):
    r = await any_sandbox.run("set -x; echo traced")
    assert r.exit_code == 0 and "traced" in r.output
    r2 = await any_sandbox.run("set +x; echo still-works")
    assert r2.exit_code == 0
    assert r2.output.rstrip().endswith("still-works")


async def test_stdin_is_closed_so_readers_do_not_hang(any_sandbox):
    r = await any_sandbox.run("python3; echo py=$?; read line; echo read=$?; cat; echo cat=$?", timeout=30)
    assert not r.timed_out
    assert "py=0" in r.output and "read=1" in r.output and "cat=0" in r.output


async def test_git_commit_without_message_fails_fast(any_sandbox):
    r = await any_sandbox.run(
        "git init -q repo && cd repo && git config user.email a@b.c && git config user.name t && "
        "echo x > f && git add f && git commit; echo rc=$?; git log --oneline | wc -l", timeout=30)
    assert not r.timed_out
    assert "rc=1" in r.output
    assert r.output.rstrip().endswith("0")


async def test_total_timeout_keeps_output_and_session(any_sandbox):
    await any_sandbox.run("cd /tmp && export KEEP=yes")
    r = await any_sandbox.run("echo started; sleep 100000", timeout=1.5)
    assert r.timed_out and r.exit_code is None
    assert r.output.startswith("started\n")
    assert "timed out" in r.note
    after = await any_sandbox.run('echo "$KEEP $PWD"')
    assert after.exit_code == 0 and after.output == "yes /tmp\n"
    assert not after.restarted


async def test_timeout_kills_the_whole_process_group(any_sandbox):
    r = await any_sandbox.run("(sleep 100000 & sleep 100000 & wait) | cat", timeout=1)
    assert r.timed_out
    ps = await any_sandbox.run("for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done")
    assert "sleep 100000" not in ps.output


async def test_idle_timeout(any_sandbox):
    r = await any_sandbox.run("echo tick; sleep 0.3; echo tock; sleep 100000", timeout=60, idle_timeout=1)
    assert r.timed_out and r.exit_code is None
    assert r.output.startswith("tick\ntock\n")
    assert "no output for 1s" in r.note
    assert (await any_sandbox.run("echo fine")).output == "fine\n"


async def test_busy_builtin_loop_restarts_the_shell(any_sandbox):
    await any_sandbox.run("mkdir -p keep && cd keep")
    r = await any_sandbox.run("while :; do :; done", timeout=1)
    assert r.timed_out and r.restarted
    assert "restarted" in r.note
    after = await any_sandbox.run("pwd")
    assert after.exit_code == 0 and after.output == f"{any_sandbox.workspace}/keep\n"


async def test_exit_restarts_the_session_and_says_so(any_sandbox):
    await any_sandbox.run("export GONE=1")
    r = await any_sandbox.run("echo bye; exit 3")
    assert r.restarted and r.exit_code is None
    assert r.output == "bye\n"
    assert "exit" in r.note
    after = await any_sandbox.run('echo "[$GONE]"')
    assert after.exit_code == 0 and after.output == "[]\n"


async def test_a_killed_shell_is_restarted(any_sandbox):
    r = await any_sandbox.run("kill -9 $$")
    assert r.restarted and r.exit_code is None
    assert (await any_sandbox.run("echo back")).output == "back\n"


async def test_ansi_stripped_and_invalid_utf8_replaced(any_sandbox):
    r = await any_sandbox.run(r"printf '\033[1;31mred\033[0m \033]0;title\007ok\n\377\376 bytes\n50%%\r100%%\n'")
    assert r.exit_code == 0
    assert r.output == "red ok\n\ufffd\ufffd bytes\n100%\n"


async def test_long_output_is_capped_and_saved(any_sandbox):
    r = await any_sandbox.run("seq 1 200000")
    assert r.exit_code == 0 and r.truncated
    assert r.output.startswith("1\n2\n3\n")
    assert r.output.rstrip().endswith("199999\n200000")
    assert "bytes of output omitted" in r.output and r.full_output_path in r.output
    assert len(r.output) < 20_000
    full = await any_sandbox.run(f"wc -l < {r.full_output_path}; tail -n 1 {r.full_output_path}")
    assert full.output.split() == ["200000", "200000"]


async def test_many_commands_in_sequence(any_sandbox):
    for i in range(50):
        r = await any_sandbox.run(f"echo {i}")
        assert r.output == f"{i}\n"


async def test_syntax_error_does_not_break_the_session(any_sandbox):
    r = await any_sandbox.run("if then fi (")
    assert r.exit_code == 2 and "syntax error" in r.output
    assert (await any_sandbox.run("echo ok")).output == "ok\n"


@pytest.mark.parametrize("text", ["", "x", "ünïcödé ✓", "a\nb\tc", "'\"\\$`!*?[]{}~#;&|<>()"])
async def test_write_file_round_trips_through_the_shell(any_sandbox, text):
    await any_sandbox.write_file("round.txt", text)
    r = await any_sandbox.run("cat round.txt")
    assert r.output == text
