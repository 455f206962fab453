"""``make run`` and ``make demo``: the local stack through a photo's whole life.

Uploads the corpus the way a browser does (presigned POSTs), waits for each image to be
placed, moves the clock past the TEMP period (the daily lifecycle promotes to HOT) and
past 90 idle days (it archives to COLD, S3 Glacier Instant Retrieval by default; a photo
too small for that move to pay for itself stays in HOT), and prints what happened to
each image and the stats. ``make run`` then keeps serving the API and the dashboard.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from shelflife.domain.units import human_bytes
from shelflife_tools.client import ApiClient
from shelflife_tools.console import print_stats, table, wait_for_interrupt
from shelflife_tools.local import LOCAL_FOLDER, STACK_FILE
from shelflife_tools.local.stack import LocalStack

USER = "demo"
PHASES = (
    ("after upload", timedelta(0)),
    ("+49 hours", timedelta(hours=49)),
    ("+91 days", timedelta(days=91)),
)


def run_demo(*, corpus: Path, folders: list[str], serve: bool, port: int, out: TextIO) -> int:
    files = []
    for folder in folders:
        path = corpus / folder
        if not path.is_dir():
            out.write(f"demo: {path} is missing (the corpus lives in ../shared/corpus)\n")
            return 2
        files += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() != ".md")
    stack = LocalStack(api_port=port, folder=LOCAL_FOLDER)
    stack.start()
    try:
        (LOCAL_FOLDER / STACK_FILE).write_text(json.dumps({"api_url": stack.api_url}))
        stack.serve()
        client = ApiClient(stack.api_url, stack.token(USER))
        out.write(f"local stack up: API {stack.api_url}; uploading {len(files)} images\n")
        results = [client.upload(path, wait=120) for path in files]
        tiers: dict[str, list[str]] = {r.photo_id: [] for r in results}
        for label, delta in PHASES:
            if delta:
                now = stack.advance(delta)
                out.write(f"clock moved {label} to {now:%Y-%m-%d %H:%M} UTC; the lifecycle ran\n")
            stack.drain()
            current = {photo["id"]: photo for photo in client.photos()}
            for photo_id, history in tiers.items():
                photo = current.get(photo_id)
                history.append(photo["tier"] or photo["state"] if photo else "gone")
        rows = []
        for result in results:
            photo = result.photo or {}
            rows.append(
                [
                    f"{result.path.parent.name}/{result.path.name}",
                    photo.get("state", "not placed"),
                    " -> ".join(tiers[result.photo_id]),
                    human_bytes(result.bytes_in),
                    human_bytes(photo["stored_size"]) if photo.get("stored_size") else "-",
                    photo.get("rejection_reason") or "",
                ]
            )
        out.write("\n")
        table(
            rows,
            [
                "image",
                "state",
                "tier: " + ", ".join(p for p, _ in PHASES),
                "before",
                "after",
                "note",
            ],
            out,
        )
        out.write("\n")
        print_stats(client.get("/stats"), out)
        placed = all(result.placed for result in results)
        if serve:
            out.write(
                f"\nserving the API at {stack.api_url}; the dashboard (admin token in the "
                f"link):\n  {stack.dashboard_link()}\n"
                f"the demo user's gallery (their token in the link):\n"
                f"  {stack.gallery_link(USER)}\n"
                "tokens for the API: .venv/bin/shelflife local token --user alice [--admin]\n"
                "Ctrl-C stops\n"
            )
            out.flush()
            wait_for_interrupt()
        return 0 if placed else 1
    finally:
        stack.stop()
        (LOCAL_FOLDER / STACK_FILE).unlink(missing_ok=True)
