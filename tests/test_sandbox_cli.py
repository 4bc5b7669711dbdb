"""``agentkit sandboxes list|prune`` against a real Docker engine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from agentkit.cli import main
from tests.fixtures_sandbox import SANDBOX_IMAGE, require_docker


def test_help_lists_the_actions(capsys):
    with pytest.raises(SystemExit):
        main(["sandboxes", "--help"])
    out = capsys.readouterr().out
    assert "prune" in out and "list" in out


def test_leftover_rule():
    from agentkit.sandboxes.docker import is_leftover

    dead = subprocess.Popen(["true"])
    dead.wait()
    here = socket.gethostname()
    assert is_leftover({"agentkit.pid": str(dead.pid), "agentkit.host": here})
    assert not is_leftover({"agentkit.pid": str(os.getpid()), "agentkit.host": here})
    assert not is_leftover({"agentkit.pid": str(dead.pid), "agentkit.host": here + "-elsewhere"})
    assert is_leftover({})


def test_bad_docker_host_is_a_one_line_error(capsys):
    rc = main(["sandboxes", "--docker-host", "unix:///nonexistent/docker.sock", "list"])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot reach a Docker engine" in err and "Traceback" not in err


@pytest.mark.docker
def test_prune_removes_leftover_sandbox_containers(capsys):
    require_docker()
    import docker

    from agentkit.sandboxes.docker import _created, create_container

    client = docker.from_env()
    # A leftover from a "crashed" process: its owner pid no longer exists.
    dead = subprocess.Popen(["true"])
    dead.wait()
    cid = create_container(SANDBOX_IMAGE, labels={"agentkit.pid": str(dead.pid)})
    _created.discard(cid)
    live = create_container(SANDBOX_IMAGE)  # owned by this (live) process: must survive
    other = client.containers.create(SANDBOX_IMAGE, ["true"], labels={"unrelated": "1"})
    try:
        assert main(["sandboxes", "list"]) == 0
        assert cid[:12] in capsys.readouterr().out
        assert main(["sandboxes", "prune", "--dry-run"]) == 0
        assert f"would remove {cid[:12]}" in capsys.readouterr().out
        client.containers.get(cid)  # still there after a dry run
        # the real thing, through the installed entry point
        r = subprocess.run([sys.executable, "-m", "agentkit", "sandboxes", "prune"], capture_output=True, text=True)
        assert r.returncode == 0 and f"removed {cid[:12]}" in r.stdout
        labelled = client.containers.list(all=True, filters={"label": "agentkit.sandbox=1"})
        assert cid not in [c.id for c in labelled]
        client.containers.get(other.id)  # containers without the label are left alone
        client.containers.get(live)  # and so are those of live owners
    finally:
        other.remove(force=True)
        client.containers.get(live).remove(force=True)
        _created.discard(live)
        try:
            client.containers.get(cid).remove(force=True)
        except docker.errors.NotFound:
            pass
        client.close()
