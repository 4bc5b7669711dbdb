"""``python -m bench workspace``-style script: time from ``agentkit code`` start to the first model
request, and from the trajectory's ``end`` record to the process exit, on a generated git repo of
N files (default 20,000, with an ignored node_modules of 5,000 more). Prints a table, writes JSON.

    python bench/workspace.py [--files 20000] [--json bench/results/workspace.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_repo(root: Path, files: int, ignored: int = 5000) -> Path:
    """A git repo of ``files`` small tracked files in folders of 100, one commit, a .gitignore'd
    node_modules of ``ignored`` files, one uncommitted edit and one untracked file."""
    repo = root / "repo"
    for i in range(files):
        d = repo / "src" / f"d{i // 100:04d}"
        if i % 100 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}.py").write_text(f"x = {i}\n")
    nm = repo / "node_modules" / "big"
    nm.mkdir(parents=True)
    for i in range(ignored):
        (nm / f"m{i}.js").write_text("module.exports = 1\n")
    (repo / ".gitignore").write_text("node_modules/\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "-c", "gc.auto=0", "commit", "-q", "-m", "init", "--no-gpg-sign"], cwd=repo, check=True,
                   env=env)
    # real repositories keep most objects in packs; and no background gc then races the clone
    subprocess.run(["git", "repack", "-adq"], cwd=repo, check=True, env=env)
    (repo / "src" / "d0000" / "f000000.py").write_text("x = 'uncommitted'\n")
    (repo / "NOTES.txt").write_text("untracked\n")
    return repo


def measure(repo: Path, out: Path, extra: list[str]) -> dict[str, float]:
    from agentkit.testing.server import FakeServer, Reply

    first: list[float] = []

    def responder(body: dict) -> Reply:  # noqa: ANN001
        if not first:
            first.append(time.monotonic())
        return Reply(content="done, nothing to change")

    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["AGENTKIT_API_KEY"] = "k"
    server = FakeServer(responder=responder).start_in_thread()
    try:
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "agentkit", "code", "look around", "--repo", str(repo),
                        "--model", "fake", "--provider", "openai-compatible", "--base-url", server.base_url,
                        "--out", str(out), "--quiet", *extra], check=False, env=env,
                       stdout=subprocess.DEVNULL)
        t_exit = time.monotonic()
    finally:
        server.stop()
    end_t = os.path.getmtime(out / "trajectory.jsonl")  # the end record is the file's last write
    exit_wall = time.time() - (time.monotonic() - t_exit)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and not p.is_symlink())
    return {"start_to_first_request_s": round(first[0] - t0, 2) if first else float("nan"),
            "end_to_exit_s": round(exit_wall - end_t, 2), "total_s": round(t_exit - t0, 2),
            "run_folder_mb": round(size / 1e6, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--label", default="")
    ap.add_argument("--repo", help="an existing repo to use instead of generating one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.monotonic()
        repo = Path(args.repo) if args.repo else make_repo(Path(tmp), args.files)
        made = time.monotonic() - t
        row = measure(repo, Path(tmp) / "run", [])
    print(f"repo: {args.files:,} tracked files + 5,000 ignored (made in {made:.1f} s) {args.label}")
    print(f"{'start→first request':>22} {'end→exit':>9} {'total':>7} {'run folder':>11}")
    print(f"{row['start_to_first_request_s']:>20.2f} s {row['end_to_exit_s']:>7.2f} s {row['total_s']:>5.2f} s "
          f"{row['run_folder_mb']:>8.1f} MB")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"files": args.files, **row}, indent=2) + "\n")


if __name__ == "__main__":
    main()
