"""The floor for the concurrency benchmark: no framework at all (stdlib only, any Python >= 3.9).

Each "run" is one asyncio stream connection that posts the growing conversation as JSON, reads
the reply, appends the assistant turn and an echo tool result, and goes on until the scripted
episode ends: the least work an agent can do per step. A tool's answer is its own argument
(with ``--tool bash`` the command is not run: this driver is for ``--tool echo``). What a
framework adds to the wall time is its distance from this row.
Prints one JSON line: ``{"framework", "wall_s", "peak_mb", "statuses"}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

from driver_common import driver_args, peak_rss_mb


async def run_one(base: str, steps: int, run_id: str, tool: str) -> str:
    url = urlsplit(f"{base}/text/{tool}/{steps}/v1/chat/completions")
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    msgs: list[dict] = [{"role": "user", "content": f"Run the commands. [[run:{run_id}]]"}]
    try:
        while True:
            body = json.dumps({"model": "deepseek-chat", "messages": msgs}).encode()
            writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % (url.path.encode(), url.netloc.encode(), len(body)) + body)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            length = int(head.split("content-length:")[1].split("\r\n")[0])
            message = json.loads(await reader.readexactly(length))["choices"][0]["message"]
            msgs.append(message)
            calls = message.get("tool_calls") or []
            if not calls:
                return "done"
            for call in calls:  # the tool's answer is its argument (a bash command is not run)
                args = json.loads(call["function"]["arguments"])
                answer = args.get("text", args.get("command"))
                msgs.append({"role": "tool", "tool_call_id": call["id"], "content": answer})
    finally:
        writer.close()


async def amain(base: str, steps: int, concurrency: int, tag: str, warmup: bool, tool: str) -> dict:
    if warmup:
        await run_one(base, steps, f"{tag}-warmup", tool)
    t0 = time.perf_counter()
    statuses = await asyncio.gather(*(run_one(base, steps, f"{tag}-{i}", tool) for i in range(concurrency)))
    return {"framework": "no-framework", "wall_s": time.perf_counter() - t0, "peak_mb": peak_rss_mb(),
            "statuses": list(statuses)}


def main() -> None:
    a = driver_args("floor").parse_args()
    print(json.dumps(asyncio.run(amain(a.base, a.steps, a.concurrency, a.tag, a.warmup, a.tool))))


if __name__ == "__main__":
    main()
