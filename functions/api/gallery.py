"""The gallery: a signed-in user's page (issue 23, part 3), beside the admin dashboard.

One static HTML page with one inline script, allowed by its hash in the page's
Content-Security-Policy (nothing else may run; no framework, nothing from a CDN). The
page holds no user data: it is public, like /docs, and its script does everything
through the API with the user's token, as any client would:

- the token comes from the address's fragment (``#access_token=`` or ``#id_token=``,
  what Cognito's hosted sign-in answers with) or is pasted into the page; it is kept in
  the tab's session storage and the fragment is cleared, so it is never sent to a server
  in a URL or a Referer;
- the grid is ``GET /photos``, each thumbnail ``GET /photos/{id}/image`` (a 320 px
  square, AVIF or WebP where the browser takes them) with ``redirect=false``: an
  ``<img>`` cannot send the token, so the script asks for the signed URL and the image
  loads from the storage's origin;
- a dropped (or chosen) file goes straight to the upload bucket by the presigned POST
  (``POST /uploads``) with a progress bar, then ``GET /uploads/{id}`` says what became
  of it (stored, a duplicate of which photo, rejected and why);
- publish, download and delete are the routes of the same names; usage against the
  quota is ``GET /users/me/usage``.

Every text shown comes from ``textContent`` (a file name is the user's own text, never
markup). Every element the tests read carries its value in a ``data-`` attribute.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

from shelflife.domain.settings import Settings

# Uploads from the page go to this draft, so each photo can be published from it.
GALLERY_DRAFT = "gallery"
THUMBNAIL = "w=320&fit=cover&redirect=false"

SCRIPT = """(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const KEY = "shelflife.token";
  const DRAFT = document.body.dataset.draft;
  const THUMBNAIL = document.body.dataset.thumbnail;
  const api = (path) => new URL(path, location.href).toString();
  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("access_token") || fragment.get("id_token");
  if (given) {
    sessionStorage.setItem(KEY, given);
    history.replaceState(null, "", location.pathname + location.search);
  }

  function element(tag, attributes, text) {
    const made = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) made.setAttribute(name, value);
    if (text !== undefined) made.textContent = text;
    return made;
  }

  function human(bytes) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
  }

  function say(text, state) {
    const status = $("status");
    status.textContent = text;
    status.dataset.state = state || "ok";
  }

  function signedIn(yes) {
    $("signin").hidden = yes;
    $("main").hidden = !yes;
  }

  class Refused extends Error {}

  async function call(method, path, body, accept) {
    const headers = {Authorization: "Bearer " + sessionStorage.getItem(KEY)};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (accept) headers.Accept = accept;
    const answer = await fetch(api(path), {
      method, headers, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const type = answer.headers.get("content-type") || "";
    const data = type.includes("json") ? await answer.json() : null;
    if (answer.status === 401) {
      sessionStorage.removeItem(KEY);
      signedIn(false);
      throw new Refused("your sign-in has expired or was refused: sign in again");
    }
    if (!answer.ok) {
      throw new Error((data && data.error && data.error.message) || "HTTP " + answer.status);
    }
    return data;
  }

  async function showUsage() {
    const usage = await call("GET", "users/me/usage");
    const box = $("usage");
    box.dataset.photos = usage.photos;
    box.dataset.bytes = usage.bytes;
    box.dataset.quota = usage.quota_bytes === null ? "" : usage.quota_bytes;
    let text = usage.photos + " photos, " + human(usage.bytes);
    if (usage.quota_bytes !== null) {
      text += " of " + human(usage.quota_bytes) + " (" + human(usage.remaining_bytes) + " left)";
    }
    box.replaceChildren(element("span", {}, text));
    if (usage.quota_bytes !== null) {
      box.append(element("meter", {id: "quota", min: "0", max: String(usage.quota_bytes),
        value: String(usage.bytes)}));
    }
  }

  async function thumbnail(photo, image) {
    try {
      const variant = await call("GET", "photos/" + photo.id + "/image?" + THUMBNAIL,
        undefined, "image/avif,image/webp,image/jpeg");
      image.dataset.variant = variant.name;
      image.src = variant.url;
    } catch (error) {
      image.alt = "no thumbnail: " + error.message;
      image.dataset.failed = "true";
    }
  }

  function card(photo) {
    const item = element("li", {class: "photo", "data-id": photo.id, "data-state": photo.state,
      "data-tier": photo.tier || "", "data-published": photo.published_at ? "true" : "false"});
    const name = photo.filename || (photo.state === "rejected" ? "a rejected upload" : photo.id);
    const image = photo.state === "active"
      ? element("img", {alt: name, width: "160", height: "160", loading: "lazy"})
      : element("div", {class: "placeholder"}, photo.rejection_reason || photo.state);
    item.append(image);
    item.append(element("span", {class: "name", title: name}, name));
    const facts = photo.state === "active"
      ? [photo.tier, photo.width + "x" + photo.height, human(photo.stored_size),
        photo.published_at ? "published" : ""]
      : [photo.state];
    item.append(element("span", {class: "facts"}, facts.filter(Boolean).join(" · ")));
    const actions = element("span", {class: "actions"});
    if (photo.state === "active" && photo.draft_id && !photo.published_at) {
      const publish = element("button", {type: "button", "data-action": "publish"}, "Publish");
      publish.addEventListener("click", () => act(item, async () => {
        const result = await call("POST", "drafts/" + encodeURIComponent(photo.draft_id)
          + "/publish", {photo_ids: [photo.id]});
        if (result.failed.length) throw new Error(result.failed[0].reason);
        return "published " + (photo.filename || photo.id);
      }));
      actions.append(publish);
    }
    if (photo.state === "active") {
      const download = element("button", {type: "button", "data-action": "download"}, "Download");
      download.addEventListener("click", () => act(item, async () => {
        const answer = await call("GET", "photos/" + photo.id + "/url");
        const link = element("a", {href: answer.url, download: photo.filename || photo.id,
          target: "_blank", rel: "noopener"});
        link.click();
        return "downloading " + (photo.filename || photo.id);
      }, false));
      actions.append(download);
    }
    const remove = element("button", {type: "button", "data-action": "delete"}, "Delete");
    remove.addEventListener("click", () => {
      if (remove.dataset.armed !== "true") {  // a second click confirms
        remove.dataset.armed = "true";
        remove.textContent = "Really delete?";
        return;
      }
      act(item, async () => {
        await call("DELETE", "photos/" + photo.id);
        return "deleted " + (photo.filename || photo.id);
      });
    });
    actions.append(remove);
    item.append(actions);
    if (photo.state === "active") thumbnail(photo, image);
    return item;
  }

  async function act(item, work, reload = true) {
    item.dataset.busy = "true";
    try {
      say(await work());
      if (reload) await load();
    } catch (error) {
      say(error.message, "failed");
    } finally {
      delete item.dataset.busy;
    }
  }

  async function load() {
    await showUsage();
    const photos = [];
    let cursor = null;
    do {
      const page = await call("GET", "photos?limit=100"
        + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      photos.push(...page.items);
      cursor = page.cursor;
    } while (cursor && photos.length < 1000);
    const grid = $("grid");
    grid.replaceChildren(...photos.map(card));
    grid.dataset.count = photos.length;
    $("empty").hidden = photos.length > 0;
  }

  function safeName(name) {
    const cleaned = name.replace(/[^A-Za-z0-9 ._()+-]/g, "_").replace(/^[^A-Za-z0-9]+/, "");
    return cleaned.slice(0, 200) || "photo";
  }

  function post(ticket, file, bar) {
    return new Promise((done, failed) => {
      const form = new FormData();
      for (const [name, value] of Object.entries(ticket.fields)) form.append(name, value);
      form.append("file", file);
      const request = new XMLHttpRequest();
      request.open("POST", ticket.url);
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) bar.value = Math.round(100 * event.loaded / event.total);
      });
      request.addEventListener("load", () => request.status < 300 ? done() :
        failed(new Error("the upload bucket answered " + request.status)));
      request.addEventListener("error", () => failed(new Error("the file did not reach "
        + "the upload bucket (is this page's origin in CorsAllowedOrigins?)")));
      request.send(form);
    });
  }

  async function upload(file) {
    const row = element("li", {class: "upload", "data-file": file.name, "data-state": "sending"});
    const bar = element("progress", {max: "100", value: "0"});
    const outcome = element("span", {class: "outcome"}, "sending");
    row.append(element("span", {class: "name"}, file.name), bar, outcome);
    $("uploads").prepend(row);
    const finish = (state, text) => {
      row.dataset.state = state;
      outcome.textContent = text;
    };
    try {
      const ticket = await call("POST", "uploads", {filename: safeName(file.name),
        content_type: file.type || "application/octet-stream", size: file.size, draft_id: DRAFT});
      await post(ticket, file, bar);
      bar.value = 100;
      finish("processing", "processing");
      for (let tries = 0; tries < 120; tries += 1) {
        const status = await call("GET", "uploads/" + ticket.upload_id);
        if (status.state === "stored") return finish("stored", "stored");
        if (status.state === "duplicate") {
          return finish("duplicate", "already here (photo " + status.photo_id + ")");
        }
        if (status.state === "rejected") return finish("rejected", "rejected: " + status.reason);
        if (status.state === "expired") return finish("failed", "never arrived");
        await sleep(1000);
      }
      finish("failed", "still processing: it will appear when ingest is done");
    } catch (error) {
      finish("failed", error.message);
    }
  }

  async function send(files) {
    for (const file of files) await upload(file);
    try { await load(); } catch (error) { say(error.message, "failed"); }
  }

  const zone = $("drop");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.dataset.over = "true";
  });
  zone.addEventListener("dragleave", () => { delete zone.dataset.over; });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    delete zone.dataset.over;
    send([...event.dataTransfer.files]);
  });
  $("files").addEventListener("change", (event) => {
    send([...event.target.files]);
    event.target.value = "";
  });
  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    const pasted = $("token").value.trim();
    if (!pasted) return;
    sessionStorage.setItem(KEY, pasted);
    $("token").value = "";
    start();
  });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    signedIn(false);
  });

  async function start() {
    if (!sessionStorage.getItem(KEY)) return signedIn(false);
    signedIn(true);
    try {
      await load();
      say("ready");
      document.body.dataset.ready = "true";
    } catch (error) {
      say(error.message, "failed");
    }
  }
  start();
})();"""
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()

STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{display:flex;gap:1em;align-items:center;padding:.8em 1.2em;background:#0072B2;color:#fff}
header h1{font-size:1.2em;margin:0}
header #usage{margin-left:auto;display:flex;gap:.6em;align-items:center}
header button{background:none;border:1px solid #fff;color:#fff;border-radius:4px}
main,#signin{padding:1em 1.2em}
#drop{border:2px dashed #999;border-radius:8px;padding:1.2em;text-align:center;background:#fff}
#drop[data-over]{border-color:#0072B2;background:#eef6fb}
#uploads{list-style:none;padding:0;margin:.8em 0}
#uploads li{display:flex;gap:.8em;align-items:center;margin:.2em 0}
#uploads li[data-state=rejected] .outcome,#uploads li[data-state=failed] .outcome{color:#D55E00}
#grid{list-style:none;padding:0;display:grid;gap:12px;
grid-template-columns:repeat(auto-fill,minmax(180px,1fr))}
.photo{background:#fff;border-radius:8px;padding:8px;box-shadow:0 1px 3px #0002;
display:flex;flex-direction:column;gap:4px}
.photo img{width:100%;height:auto;aspect-ratio:1;object-fit:cover;border-radius:4px;background:#eee}
.photo .name{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.photo .facts{color:#666;font-size:.85em}
.photo[data-busy] {opacity:.5}
.actions{display:flex;gap:4px;flex-wrap:wrap}
button{cursor:pointer;padding:.25em .6em}
.choose{color:#0072B2;text-decoration:underline;cursor:pointer}
.choose input{position:absolute;width:1px;height:1px;opacity:0}
.placeholder{aspect-ratio:1;border-radius:4px;background:#f3e3da;color:#8a3b12;padding:8px;
font-size:.85em;overflow:hidden}
#status[data-state=failed]{color:#D55E00}
textarea{width:100%;max-width:40em}
"""


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(settings: Settings) -> str:
    """Only the page's own script runs; it talks to this origin (the API) and to the
    storage (the presigned POST, the signed image URLs): any HTTPS origin deployed
    (S3, R2 and B2 hosts vary by bucket and region), and the local stack's endpoints
    where they are set."""
    storage = " ".join(
        sorted(
            {"https:"}
            | {o for o in map(_origin, (settings.s3_endpoint_url, settings.r2_endpoint_url)) if o}
        )
    )
    return (
        "default-src 'none'; "
        f"script-src 'sha256-{SCRIPT_HASH}'; "
        "style-src 'unsafe-inline'; "
        f"img-src 'self' data: blob: {storage}; "
        f"connect-src 'self' {storage}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def render(settings: Settings) -> str:
    """The page (the same for everyone: the script fetches the user's photos)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>shelflife: your photos</title>
<style>{STYLE}</style></head>
<body data-draft="{GALLERY_DRAFT}" data-thumbnail="{THUMBNAIL}">
<header><h1>shelflife</h1><span id="status" data-state="ok">loading</span>
<div id="usage"></div><button type="button" id="signout">Sign out</button></header>
<form id="signin" hidden>
<p>Sign in: open this page from your sign-in link (the token arrives in the address's
<code>#access_token=</code> fragment), or paste a token (<code>shelflife local</code>
prints one; deployed, your identity provider's ID or access token).</p>
<textarea id="token" rows="4" placeholder="eyJ..." autocomplete="off"></textarea>
<p><button type="submit">Sign in</button></p></form>
<main id="main" hidden>
<div id="drop"><p>Drop photos here, or
<label class="choose"><input type="file" id="files" accept="image/*" multiple>choose files</label>.
Each goes straight to the store (up to {settings.max_upload_bytes // 1024**2} MB).</p>
<ul id="uploads"></ul></div>
<p id="empty" hidden>No photos yet.</p>
<ul id="grid" data-count="0"></ul>
</main>
<script>{SCRIPT}</script>
</body></html>"""
