#!/usr/bin/env bash
# Build the images of the two example instances in calc.jsonl, offline: the sandbox image
# (sandboxes/build-offline-image.sh) plus calc/ as a git repository at /testbed, tagged with the
# official names of demo__calc-1 and demo__calc-2. The commit is made with fixed dates, so its id
# is the base_commit the instances name.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${AGENTKIT_SANDBOX_IMAGE:-agentkit-sandbox:latest}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp -r "$here/calc" "$ctx/testbed"
export GIT_AUTHOR_NAME=agentkit GIT_AUTHOR_EMAIL=agentkit@example.com GIT_COMMITTER_NAME=agentkit \
  GIT_COMMITTER_EMAIL=agentkit@example.com GIT_AUTHOR_DATE=2024-01-01T00:00:00Z GIT_COMMITTER_DATE=2024-01-01T00:00:00Z
git -C "$ctx/testbed" init -q -b main
git -C "$ctx/testbed" add -A
git -C "$ctx/testbed" commit -qm "calc"
printf 'FROM %s\nCOPY --chown=agent:agent testbed /testbed\nWORKDIR /testbed\n' "$base" > "$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q --pull=false -t swebench/sweb.eval.x86_64.demo_1776_calc-1:latest "$ctx" >/dev/null
docker tag swebench/sweb.eval.x86_64.demo_1776_calc-1:latest swebench/sweb.eval.x86_64.demo_1776_calc-2:latest
echo "built swebench/sweb.eval.x86_64.demo_1776_calc-{1,2}:latest at $(git -C "$ctx/testbed" rev-parse HEAD)"
