"""Sandbox latency: the persistent shell session against one ``docker exec`` per command.

Measures, in one run on one machine: the median latency of ``true`` and of ``cat`` on a 10 KB
file through the persistent session (LocalSandbox, DockerSandbox) and through a fresh
``docker exec`` per command (the Docker SDK's ``exec_run``, and the ``docker`` CLI, which is how
mini-swe-agent runs commands), plus the time from creating a Docker sandbox to the result of its
first command.

    python -m bench.sandbox [--n 200] [--starts 5] [--json] [--out bench/results/sandbox.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

IMAGE = os.environ.get("AGENTKIT_SANDBOX_IMAGE", "agentkit-sandbox:latest")
PAYLOAD = "".join(f"line {i:05d} of the ten kilobyte benchmark file\n" for i in range(10_000))[:10_240]


def _ms(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"median_ms": round(statistics.median(s) * 1e3, 3), "p90_ms": round(s[int(len(s) * 0.9) - 1] * 1e3, 3),
            "n": len(s)}


async def _session_latency(sb: Any, n: int) -> dict[str, dict[str, float]]:
    await sb.write_file("bench10k.txt", PAYLOAD)
    out: dict[str, dict[str, float]] = {}
    for name, cmd in (("true", "true"), ("cat_10kb", "cat bench10k.txt")):
        for _ in range(5):  # warm-up
            await sb.run(cmd)
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            r = await sb.run(cmd)
            samples.append(time.perf_counter() - t)
            assert r.exit_code == 0 and (name == "true" or len(r.output) > 1000), r
        out[name] = _ms(samples)
    return out


def _exec_latency(api: Any, cid: str, workdir: str, n: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, cmd in (("true", ["true"]), ("cat_10kb", ["cat", f"{workdir}/bench10k.txt"])):
        samples = []
        for i in range(n + 3):
            t = time.perf_counter()
            ex = api.exec_create(cid, cmd, stdout=True, stderr=True, user="agent")
            data = api.exec_start(ex["Id"])
            code = api.exec_inspect(ex["Id"])["ExitCode"]
            if i >= 3:
                samples.append(time.perf_counter() - t)
            assert code == 0 and (name == "true" or len(data) > 1000)
        out[name] = _ms(samples)
    return out


def _cli_latency(cid: str, workdir: str, n: int) -> dict[str, dict[str, float]] | None:
    docker = shutil.which("docker")
    if not docker:
        return None
    out: dict[str, dict[str, float]] = {}
    for name, cmd in (("true", ["true"]), ("cat_10kb", ["cat", f"{workdir}/bench10k.txt"])):
        samples = []
        for i in range(n + 2):
            t = time.perf_counter()
            r = subprocess.run([docker, "exec", "-u", "agent", cid, *cmd], capture_output=True)
            if i >= 2:
                samples.append(time.perf_counter() - t)
            assert r.returncode == 0
        out[name] = _ms(samples)
    return out


async def _measure(n: int, starts: int) -> dict[str, Any]:
    from agentkit.sandboxes import LocalSandbox

    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "n": n,
    }
    async with LocalSandbox() as sb:
        result["local_session"] = {"isolated": sb.isolated, **await _session_latency(sb, n)}

    from agentkit.sandboxes.docker import docker_unavailable_reason

    reason = docker_unavailable_reason(IMAGE)
    if reason:
        result["docker_skipped"] = reason
        return result

    from agentkit.sandboxes import DockerSandbox

    start_samples, first_cmd = [], []
    for _ in range(starts):
        t = time.perf_counter()
        async with DockerSandbox(image=IMAGE) as sb:
            await sb.run("true")
            start_samples.append(time.perf_counter() - t)
            first_cmd.append(sb.start_seconds or 0.0)
    result["docker_start_to_first_command"] = _ms(start_samples)
    result["docker_start_only"] = _ms(first_cmd)

    async with DockerSandbox(image=IMAGE) as sb:
        result["docker_session"] = await _session_latency(sb, n)
        api, cid, wd = sb.api, sb.container_id, sb.workspace
        result["docker_exec_sdk"] = await asyncio.to_thread(_exec_latency, api, cid, wd, max(n // 4, 20))
        cli = await asyncio.to_thread(_cli_latency, cid, wd, max(n // 4, 20))
        if cli:
            result["docker_exec_cli"] = cli
    ses, sdk = result["docker_session"], result["docker_exec_sdk"]
    result["speedup_session_vs_exec_sdk"] = {
        k: round(sdk[k]["median_ms"] / max(ses[k]["median_ms"], 1e-6), 1) for k in ("true", "cat_10kb")}
    return result


def run(n: int = 200, starts: int = 5) -> dict[str, Any]:
    """Run the benchmark and return its results (milliseconds; medians over ``n`` commands)."""
    return asyncio.run(_measure(n, starts))


def table(res: dict[str, Any]) -> str:
    rows = [("what", "true (median ms)", "cat 10 KB (median ms)")]
    labels = (("local_session", "local session" + ("" if res.get("local_session", {}).get("isolated") is False
                                                    else " (bwrap)")),
              ("docker_session", "docker session"),
              ("docker_exec_sdk", "docker exec per command (SDK)"),
              ("docker_exec_cli", "docker exec per command (CLI)"))
    for key, label in labels:
        if key in res:
            rows.append((label, f"{res[key]['true']['median_ms']:.2f}", f"{res[key]['cat_10kb']['median_ms']:.2f}"))
    if "speedup_session_vs_exec_sdk" in res:
        sp = res["speedup_session_vs_exec_sdk"]
        rows.append(("speed-up session vs exec (SDK)", f"{sp['true']}x", f"{sp['cat_10kb']}x"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    if "docker_start_to_first_command" in res:
        s = res["docker_start_to_first_command"]
        lines.append(f"docker sandbox start to first command: median {s['median_ms']:.0f} ms "
                     f"(n={s['n']}, p90 {s['p90_ms']:.0f} ms)")
    if "docker_skipped" in res:
        lines.append(f"docker: skipped ({res['docker_skipped']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.sandbox", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="commands per measurement (default 200)")
    ap.add_argument("--starts", type=int, default=5, help="docker sandboxes started for the start time")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--out", default="bench/results/sandbox.json", help="where to write the JSON results")
    args = ap.parse_args(argv)
    res = run(args.n, args.starts)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2) if args.json else table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
