"""The task from a GitHub issue: ``agentkit code https://github.com/OWNER/REPO/issues/N``.

The issue's title and body come from the GitHub REST API (``GET /repos/OWNER/REPO/issues/N``) at
``$GITHUB_API_URL`` (default ``https://api.github.com``, as in GitHub Actions), with the token from
``$GITHUB_TOKEN`` when it is set (private repos, higher rate limits).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from agentkit.errors import ConfigError

ISSUE_URL = re.compile(r"https?://github\.com/([\w.-]+)/([\w.-]+)/issues/(\d+)/?(?:[#?].*)?")
DEFAULT_API = "https://api.github.com"


def issue_ref(task: str) -> tuple[str, str, int] | None:
    m = ISSUE_URL.fullmatch(task.strip())
    return (m.group(1), m.group(2), int(m.group(3))) if m else None


def fetch_issue(owner: str, repo: str, number: int, env: Mapping[str, str] | None = None,
                timeout: float = 30.0) -> str:
    """The task text: a header naming the issue, its title and its body."""
    import httpx

    env = os.environ if env is None else env
    api = (env.get("GITHUB_API_URL") or DEFAULT_API).rstrip("/")
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
               "User-Agent": "agentkit"}
    if env.get("GITHUB_TOKEN"):
        headers["Authorization"] = f"Bearer {env['GITHUB_TOKEN']}"
    url = f"{api}/repos/{owner}/{repo}/issues/{number}"
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as e:
        raise ConfigError(f"cannot fetch {owner}/{repo}#{number} from {api}: {type(e).__name__}: {e}") from None
    if resp.status_code != 200:
        hint = " (set GITHUB_TOKEN for a private repo)" if resp.status_code in (401, 403, 404) and \
            not env.get("GITHUB_TOKEN") else ""
        raise ConfigError(f"cannot fetch {owner}/{repo}#{number}: {api} answered {resp.status_code}{hint}")
    try:
        data = resp.json()
        title, body = str(data.get("title") or ""), str(data.get("body") or "")
    except (ValueError, AttributeError):
        raise ConfigError(f"cannot fetch {owner}/{repo}#{number}: {api} did not answer with an issue") from None
    return f"GitHub issue {owner}/{repo}#{number}: {title}\n\n{body}".rstrip() + "\n"


def read_issue_task(task: str) -> str:
    """``task`` itself, or the issue's text when it is a GitHub issue URL."""
    ref = issue_ref(task)
    return fetch_issue(*ref) if ref else task
