"""The API against generated requests and other users (``python -m
shelflife_tools.prove.api_fuzz``, part of ``make prove``).

1. schemathesis, from the OpenAPI document the local stack serves, authenticated as a
   normal user and as an admin: no 5xx, every response in its documented schema and
   status, invalid input refused. (Its "schema-valid request rejected" check is left
   out: ids that match the schema but name nothing answer 404 on purpose.)
2. A cross-user matrix: every route that takes a photo id, called by another user (and
   by an admin, who is not an owner either) on alice's photos, must answer 404 or
   report the id as not found, and leave every photo exactly as it was.
3. Hostile requests (issue 19): bodies nested 100,000 deep, integers of 5,000 digits,
   numbers and flags of the wrong type, crafted page cursors (and another user's), and
   tokens whose group claims only contain the admin group's name as a part of another
   name. Each must answer its 4xx in the documented error shape, with no internal
   error text; the tokens must not reach an admin route.
"""

from __future__ import annotations

import argparse
import base64
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
    # A sized variant: no other user may render, store or read one (issue 23, part 2).
    ("GET", "/photos/{id}/image?w=160&redirect=false", None),
    ("GET", "/photos/{id}/history", None),
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


# Words of internal errors that must never reach a caller.
INTERNAL = ("Traceback", "botocore", "ClientError", "ValidationException", "RecursionError")


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def hostile_requests(stack: LocalStack, corpus: Path) -> tuple[int, list[str]]:
    """Every hostile request of part 3: how many were sent, and what broke a rule."""
    alice = ApiClient(stack.api_url, stack.token("alice"))
    for path in sorted((corpus / "photos").iterdir())[:3]:
        alice.upload(path, wait=60)
    own_cursor = alice.get("/photos", limit=1)["cursor"]
    upload = '{"filename": "a.jpg", "content_type": "image/jpeg", "size": %s}'
    bodies = [
        ("POST", "/uploads", "[" * 100_000 + "]" * 100_000, 400),
        ("POST", "/uploads", upload % ("9" * 5000), 400),
        ("POST", "/uploads", upload % "true", 422),
        ("POST", "/uploads", upload % '"12"', 422),
    ]
    admin_bodies = [
        ("POST", "/lifecycle/run", '{"dry_run": "false"}', 422),
        ("POST", "/reconcile", '{"fix": 1}', 422),
        ("POST", "/cleanup/redrive", '{"max_messages": "5"}', 422),
    ]
    cursors = [
        _cursor({"pk": "x"}),
        _cursor({"pk": {"S": "IMAGE#x"}}),
        _cursor([1]),
        "%%%not-base64",
        _cursor({"pk": {"S": "IMAGE#x"}, "sk": {"S": "IMAGE"}, "owner": {"S": "alice"}}),
    ]
    pretenders: list[dict[str, object]] = [
        {"groups": ["Marketing admin"]},
        {"groups": "x,admin"},
        {"groups": ["admin editors"]},
        {"cognito:groups": ["x,admin"]},
        {"scope": "shelflife/admin-readonly"},
    ]
    problems = []
    sent = 0

    def check(token: str, method: str, path: str, status: int, **kwargs: Any) -> None:
        nonlocal sent
        sent += 1
        client = ApiClient(stack.api_url, token)
        response = client.session.request(
            method,
            f"{stack.api_url}{path}",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=30,
            **kwargs,
        )
        where = f"{method} {path} {str(kwargs)[:60]}"
        if response.status_code != status:
            problems.append(f"{where}: {response.status_code}, expected {status}")
        try:
            error = response.json()["error"]
            shaped = isinstance(error["code"], str) and isinstance(error["message"], str)
        except (ValueError, KeyError, TypeError):
            shaped = False
        if not shaped:
            problems.append(f"{where}: not the documented error shape: {response.text[:80]}")
        if any(word in response.text for word in INTERNAL):
            problems.append(f"{where}: internal error text in {response.text[:120]}")

    user, admin = stack.token("alice"), stack.token("ops", admin=True)
    for method, route, body, status in bodies:
        check(user, method, route, status, data=body)
    for method, route, body, status in admin_bodies:
        check(admin, method, route, status, data=body)
    for crafted in cursors:
        check(user, "GET", "/photos", 400, params={"cursor": crafted})
    check(stack.token("bob"), "GET", "/photos", 400, params={"cursor": own_cursor})
    for claims in pretenders:
        sent += 1
        client = ApiClient(stack.api_url, stack.token("eve", extra=claims))
        try:
            client.get("/buckets")
            problems.append(f"a token with {claims} reached an admin route")
        except ApiError as e:
            if e.status != 403:
                problems.append(f"a token with {claims}: {e.status}, expected 403")
    return sent, problems


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
        sent, hostile = hostile_requests(stack, corpus)
        print(f"hostile requests: {sent} sent, {len(hostile)} problems")
        for problem in hostile:
            print(f"  {problem}")
        ok = not problems and not hostile
        for user, admin in (("alice", False), ("ops", True)):
            passed, summary = schemathesis(stack, user, admin=admin, examples=args.max_examples)
            who = "admin" if admin else "user"
            print(f"schemathesis as {who}: {'pass' if passed else 'FAIL'}: {summary}")
            ok = ok and passed
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
