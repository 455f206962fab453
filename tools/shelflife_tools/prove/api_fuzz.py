"""The API against generated requests and other users (``python -m
shelflife_tools.prove.api_fuzz``, part of ``make prove``).

1. schemathesis, from the OpenAPI document the local stack serves, authenticated as a
   normal user and as an admin: no 5xx, every response in its documented schema and
   status, invalid input refused. (Its "schema-valid request rejected" check is left
   out: ids that match the schema but name nothing answer 404 on purpose.)
2. A cross-user matrix: every route that takes a photo id, called by another user (and
   by an admin, who is not an owner either) on alice's photos, must answer 404 or
   report the id as not found, and leave every photo exactly as it was.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from shelflife_tools.client import ApiClient, ApiError
from shelflife_tools.local.stack import LocalStack

MAX_EXAMPLES = 50
# Routes that take a photo: (method, path, body) with {id} for the photo.
PHOTO_ROUTES = [
    ("GET", "/photos/{id}", None),
    ("GET", "/photos/{id}/url", None),
    ("DELETE", "/photos/{id}", None),
    ("POST", "/drafts/d1/publish", {"photo_ids": ["{id}"]}),
]


def schemathesis(
    stack: LocalStack, user: str, *, admin: bool, examples: int = MAX_EXAMPLES
) -> tuple[bool, str]:
    command = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    done = subprocess.run(
        [
            command,
            "run",
            f"{stack.api_url}/openapi.json",
            "--url",
            stack.api_url,
            "-H",
            f"Authorization: Bearer {stack.token(user, admin=admin)}",
            "--max-examples",
            str(examples),
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--seed",
            "9",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=stack.folder,  # its cache (.schemathesis/) goes with the stack's files
    )
    summary = [line for line in done.stdout.splitlines() if "generated" in line or "❌" in line]
    return done.returncode == 0, " / ".join(summary) or done.stdout[-500:]


def cross_user_matrix(stack: LocalStack, corpus: Path) -> list[str]:
    alice = ApiClient(stack.api_url, stack.token("alice"))
    photos = sorted((corpus / "photos").iterdir())[:2]
    ids = [alice.upload(path, wait=60).photo_id for path in photos]
    ids.append(alice.upload(photos[0], draft_id="d1", wait=60).photo_id)
    before = {photo_id: alice.get(f"/photos/{photo_id}") for photo_id in ids}
    problems = []
    for caller in (
        ApiClient(stack.api_url, stack.token("bob")),
        ApiClient(stack.api_url, stack.token("ops", admin=True)),
    ):
        for photo_id in ids:
            for method, path, body in PHOTO_ROUTES:
                url = path.replace("{id}", photo_id)
                payload = json.loads(json.dumps(body).replace("{id}", photo_id)) if body else None
                try:
                    answer: Any = caller.request(method, url, json=payload)
                except ApiError as e:
                    if e.status != 404:
                        problems.append(f"{caller.user} {method} {url}: {e.status}, not 404")
                    continue
                failed = {item["id"] for item in (answer or {}).get("failed", [])}
                if photo_id not in failed or (answer or {}).get("updated"):
                    problems.append(f"{caller.user} {method} {url}: answered {answer}")
        listed = {photo["id"] for photo in caller.photos()}
        if listed & set(ids):
            problems.append(f"{caller.user} sees alice's photos in GET /photos")
    after = {photo_id: alice.get(f"/photos/{photo_id}") for photo_id in ids}
    if after != before:
        problems.append("alice's photos changed under other users' requests")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=Path("../shared/corpus"))
    parser.add_argument(
        "--max-examples", type=int, default=MAX_EXAMPLES, help="schemathesis' per operation"
    )
    args = parser.parse_args(argv)
    if args.max_examples < 1:
        parser.error("--max-examples must be at least 1")
    if not (args.corpus / "photos").is_dir():
        parser.error(f"{args.corpus} is not the image corpus (no photos/ folder in it)")
    corpus = args.corpus
    with (
        tempfile.TemporaryDirectory() as folder,
        LocalStack(api_port=0, folder=Path(folder)) as stack,
    ):
        stack.serve(interval=0.05)
        problems = cross_user_matrix(stack, corpus)
        print(
            f"cross-user matrix: {len(PHOTO_ROUTES)} routes x 3 photos x 2 callers + listings: "
            f"{len(problems)} problems"
        )
        for problem in problems:
            print(f"  {problem}")
        ok = not problems
        for user, admin in (("alice", False), ("ops", True)):
            passed, summary = schemathesis(stack, user, admin=admin, examples=args.max_examples)
            who = "admin" if admin else "user"
            print(f"schemathesis as {who}: {'pass' if passed else 'FAIL'}: {summary}")
            ok = ok and passed
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
