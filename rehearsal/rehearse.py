"""``python bot.py --rehearse``: the whole desk on this machine, without Discord.

The real bot runs (a child process, with the deployer's ``.env``, ``policy.toml`` and actions)
against the Discord stand-in, on a database of its own (``data/rehearsal.db`` unless
``HANDOFF_REHEARSAL_DB`` says otherwise). Claude answers when ``ANTHROPIC_API_KEY`` is set;
otherwise a scripted model says it is scripted and calls any action on request
(``!tool NAME {json}``), so every path of the policy can be walked. A page on 127.0.0.1 shows the
customers' DMs on one side and the staff channel (cards, threads, buttons, forms) on the other,
with any number of customers and two operators to switch between.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from core.files import sniff
from rehearsal.discord_stand_in import FakeDiscord, modal_fields
from rehearsal.scripted_claude import FakeClaude, Reply, last_user_text, text, tool_calls
from rehearsal.simulate import ROOT, bot_env, throwaway_key

CUSTOMER_BASE = 600000000000000001  # customer n is CUSTOMER_BASE + 10 * n (its DM: + 1)
SECOND_OPERATOR = 900000000000000005
HELP = (
    "(Scripted model: no ANTHROPIC_API_KEY, so nobody reads your words.) You said: {said}\n"
    "To walk the policy, write `!tool NAME {{json}}`, e.g. `!tool issue_refund"
    ' {{"order_id": 1, "amount": 10, "reason": "broken"}}`, or `!ask a question for the team`.'
)


def scripted_reply(request: dict[str, Any]) -> Reply:
    """The rehearsal's model without a key: it says so, and calls what it is told to."""
    if not request.get("tools"):  # the copilot's drafts, readings and summaries
        return text("(Scripted model: Claude's suggested answer or summary would be here.)")
    last = request["messages"][-1]["content"]
    if isinstance(last, list) and any(b.get("type") == "tool_result" for b in last):
        return text("(Scripted model) Done; the desk says what happens next.")
    said = last_user_text(request).strip()
    if said.startswith("!tool "):
        name, _, raw = said[len("!tool ") :].partition(" ")
        try:
            arguments = json.loads(raw or "{}")
        except json.JSONDecodeError:
            return text(f"(Scripted model) {raw!r} is not JSON: write !tool NAME {{...}}.")
        return tool_calls((name, arguments), preamble="(Scripted model) Calling it now.")
    if said.startswith("!ask "):
        return tool_calls(("ask_human", {"question": said[len("!ask ") :]}))
    blocks = last if isinstance(last, list) else []
    shown = [b["type"] for b in blocks if b.get("type") in ("image", "document")]
    if shown:
        return text(
            f"(Scripted model) This request carries {shown.count('image')} picture(s) and"
            f" {shown.count('document')} PDF(s) you sent, as image and document blocks: Claude"
            f" would see them. You said: {said[:300]}"
        )
    return text(HELP.format(said=said[:300]))


def slash_command(typed: str) -> tuple[str, dict[str, str | int]]:
    """``/close reason=answered by phone ticket=2`` -> ("close", {"reason": ..., "ticket": 2})."""
    import re

    name, _, rest = typed[1:].strip().partition(" ")
    options: dict[str, str | int] = {}
    for key, value in re.findall(r"(\w+)=(.*?)(?=\s+\w+=|$)", rest.strip()):
        options[key] = int(value) if value.strip().isdigit() else value.strip()
    return name, options


@web.middleware
async def same_origin_only(request: web.Request, handler: Any) -> web.StreamResponse:
    """The page acts with the deployer's own actions: only the page itself may drive it. A request
    naming another host (DNS rebinding) or posted from another site's page (a cross-site form) is
    refused."""
    host = request.host.rsplit(":", 1)[0].strip("[]")
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise web.HTTPForbidden(text="the rehearsal answers only on 127.0.0.1")
    origin = request.headers.get("Origin")
    if request.method == "POST" and origin is not None and origin != f"http://{request.host}":
        raise web.HTTPForbidden(text="the rehearsal takes actions only from its own page")
    if request.method == "POST" and request.headers.get("Sec-Fetch-Site", "same-origin") not in (
        "same-origin",
        "none",
    ):
        raise web.HTTPForbidden(text="the rehearsal takes actions only from its own page")
    return await handler(request)


class Page:
    """The rehearsal's web page over the stand-in's state."""

    def __init__(self, discord: FakeDiscord, customers: int, note: str) -> None:
        self.discord, self.customers, self.note = discord, customers, note

    def app(self) -> web.Application:
        app = web.Application(middlewares=[same_origin_only])
        app.router.add_get("/", self.index)
        app.router.add_get("/state", self.state)
        app.router.add_post("/say", self.say)
        app.router.add_post("/click", self.click)
        app.router.add_post("/write", self.write)
        app.router.add_post("/submit", self.submit)
        app.router.add_get("/file/{id}", self.file)
        return app

    async def file(self, request: web.Request) -> web.Response:
        """A file on the stand-in's CDN, shown in the page: a picture as the picture its bytes say
        it is; anything else only as a download (a customer's HTML never runs on this page)."""
        found = self.discord.attachments.get(int(request.match_info["id"]))
        if found is None:
            raise web.HTTPNotFound(text="no such file")
        name, data = found
        picture = sniff(data)
        headers = {"X-Content-Type-Options": "nosniff"}
        if picture is None or not picture.startswith("image/"):
            headers["Content-Disposition"] = "attachment; filename*=UTF-8''" + quote(name)
        return web.Response(
            body=data, content_type=picture or "application/octet-stream", headers=headers
        )

    @staticmethod
    def customer_id(n: int) -> int:
        return CUSTOMER_BASE + 10 * n

    def operator_id(self, n: int) -> int:
        return self.discord.operator_id if n == 0 else SECOND_OPERATOR

    async def index(self, request: web.Request) -> web.Response:
        choices = "".join(f'<option value="{n}">{n + 1}</option>' for n in range(self.customers))
        page = PAGE.replace("{{NOTE}}", html.escape(self.note)).replace("{{CUSTOMERS}}", choices)
        return web.Response(text=page, content_type="text/html")

    async def state(self, request: web.Request) -> web.Response:
        n = int(request.query.get("customer", "0"))
        return web.json_response({"dm": self._dm(n), "staff": self._staff(), "told": self._told()})

    def _buttons(self, message: dict[str, Any], where: str) -> str:
        out = []
        for row in message.get("components") or []:
            for b in row.get("components") or []:
                if b.get("type") == 2 and b.get("custom_id"):
                    disabled = " disabled" if b.get("disabled") else ""
                    out.append(
                        f'<button class="b" data-where="{where}" data-message="{message["id"]}"'
                        f' data-id="{html.escape(b["custom_id"])}"{disabled}>'
                        f"{html.escape(str(b.get('label', '?')))}</button>"
                    )
        return f'<div class="buttons">{"".join(out)}</div>' if out else ""

    def _attachments(self, message: dict[str, Any]) -> str:
        out = []
        for a in message.get("attachments") or []:
            name, link = html.escape(a.get("filename", "file")), f"/file/{int(a['id'])}"
            kept = self.discord.attachments.get(int(a["id"]))
            picture = kept is not None and (sniff(kept[1]) or "").startswith("image/")
            shown = f'<img src="{link}" alt="{name}">' if picture else ""
            out.append(f'<div class="file">{shown}<a href="{link}">📎 {name}</a></div>')
        return "".join(out)

    def _dm(self, n: int) -> str:
        user = self.customer_id(n)
        mine = self.discord.written.get(user + 1, [])
        theirs = self.discord.messages.get(user + 1, [])
        lines = sorted(
            [(int(m["id"]), "customer", m) for m in mine]
            + [(int(m["id"]), "bot", m) for m in theirs]
        )
        return (
            "".join(
                f'<div class="msg {who}"><div class="t">{html.escape(m.get("content", ""))}</div>'
                f"{self._attachments(m)}{self._buttons(m, 'dm') if who == 'bot' else ''}</div>"
                for _, who, m in lines
            )
            or '<p class="empty">No messages yet: write as this customer below.</p>'
        )

    def _embed(self, message: dict[str, Any]) -> str:
        out = []
        for e in message.get("embeds") or []:
            fields = "".join(
                f'<div class="f"><b>{html.escape(str(f.get("name", "")))}</b>'
                f"<div>{html.escape(str(f.get('value', '')))}</div></div>"
                for f in e.get("fields") or []
            )
            out.append(
                f'<div class="card"><div class="title">{html.escape(str(e.get("title", "")))}</div>'
                f"<div>{html.escape(str(e.get('description', '')))}</div>{fields}</div>"
            )
        return "".join(out)

    def _staff(self) -> str:
        blocks = []
        for m in self.discord.messages.get(self.discord.staff_channel_id, []):
            thread = (
                self.discord.messages.get(int(m["id"]), [])
                if int(m["id"]) in self.discord.threads
                else []
            )
            posts = "".join(
                f'<div class="post"><div class="t">{html.escape(p.get("content", ""))}</div>'
                f"{self._attachments(p)}{self._buttons(p, 'staff')}</div>"
                for p in thread
            )
            form = (
                f'<form class="w" data-thread="{m["id"]}"><input name="text" placeholder="Write'
                ' in the thread (// a note; /close reason=..., /reply text=..., /takeover)">'
                '<input type="file" name="file" multiple><button>Send</button></form>'
                if int(m["id"]) in self.discord.threads
                else ""
            )
            blocks.append(
                f'<div class="ticket"><div class="t">{html.escape(m.get("content", ""))}</div>'
                f'{self._embed(m)}{self._buttons(m, "staff")}<div class="thread">{posts}</div>'
                f"{form}</div>"
            )
        return "".join(blocks) or '<p class="empty">No tickets yet.</p>'

    def _told(self) -> list[dict[str, Any]]:
        """What the bot answered to clicks (ephemeral replies) and the forms it opened."""
        out = []
        for body in self.discord.interactions[-6:]:
            data = (body or {}).get("data") or {}
            if (body or {}).get("type") == 9:
                fields = [
                    {"id": f["custom_id"], "label": f["label"], "options": f["options"]}
                    for row in data.get("components") or []
                    for f in modal_fields(row)
                ]
                out.append(
                    {"form": data.get("custom_id"), "title": data.get("title"), "fields": fields}
                )
            elif data.get("content") or body.get("content"):
                out.append({"text": data.get("content") or body.get("content")})
        return out

    @staticmethod
    def _files(form: Any) -> list[tuple[str, bytes]]:
        """The files a page form sent (an empty file input sends one without a name)."""
        return [
            (f.filename, f.file.read())
            for f in form.getall("file", [])
            if isinstance(f, web.FileField) and f.filename
        ]

    async def say(self, request: web.Request) -> web.Response:
        form = await request.post()
        await self.discord.customer_writes(
            self.customer_id(int(str(form["customer"]))), str(form["text"]), self._files(form)
        )
        return web.json_response({"ok": True})

    def _find(self, message_id: int) -> dict[str, Any] | None:
        for posted in self.discord.messages.values():
            for m in posted:
                if int(m["id"]) == message_id:
                    return m
        return None

    async def click(self, request: web.Request) -> web.Response:
        form = await request.post()
        message = self._find(int(str(form["message"])))
        if message is None:
            raise web.HTTPNotFound(text="no such message")
        if form["where"] == "dm":
            await self.discord.customer_clicks(
                self.customer_id(int(str(form["customer"]))), message, str(form["id"])
            )
        else:
            await self.discord.operator_clicks(
                message, str(form["id"]), self.operator_id(int(str(form["operator"])))
            )
        return web.json_response({"ok": True})

    async def write(self, request: web.Request) -> web.Response:
        """A message in a thread; one starting with / is a slash command run there
        (``/close reason=answered by phone``, ``/reply text=...``, ``/takeover``)."""
        form = await request.post()
        thread, said = int(str(form["thread"])), str(form["text"])
        operator = self.operator_id(int(str(form["operator"])))
        if said.startswith("/"):
            name, options = slash_command(said)
            await self.discord.operator_command(thread, name, options, operator)
        else:
            await self.discord.operator_writes(thread, said, operator, self._files(form))
        return web.json_response({"ok": True})

    async def submit(self, request: web.Request) -> web.Response:
        form = await request.post()
        values = json.loads(str(form["values"]))
        await self.discord.operator_submits(
            str(form["form"]), values, self.operator_id(int(str(form["operator"])))
        )
        return web.json_response({"ok": True})


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Handoff rehearsal</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#111}
.banner{background:#f59e0b;padding:.5em 1em;font-weight:600}
.cols{display:grid;grid-template-columns:1fr 1.4fr;gap:1em;padding:1em}
.pane{border:1px solid #ddd;border-radius:8px;padding:.8em;min-height:70vh;overflow:auto}
.msg{margin:.4em 0;padding:.4em .6em;border-radius:8px;max-width:90%;white-space:pre-wrap}
.customer{background:#dbeafe;margin-left:auto}.bot{background:#f3f4f6}
.ticket{border:1px solid #e5e7eb;border-radius:8px;margin:.6em 0;padding:.6em}
.card{border-left:4px solid #3b82f6;padding:.3em .6em;margin:.3em 0;background:#f9fafb}
.card .title{font-weight:600}.f{margin:.2em 0}.post{margin:.3em 0 .3em 1em;white-space:pre-wrap}
.thread{border-left:2px solid #e5e7eb}.b{margin:.2em .3em .2em 0}.empty{color:#6b7280}
.file img{display:block;max-width:240px;max-height:180px;margin:.2em 0}
#told{position:fixed;bottom:0;right:0;max-width:40%;background:#111;color:#fff;padding:.5em}
</style></head><body>
<div class="banner">Rehearsal: nothing here reaches Discord or real customers. {{NOTE}}</div>
<div class="cols"><div class="pane"><h3>Customer <select id="customer">{{CUSTOMERS}}</select></h3>
<div id="dm"></div><form id="say"><input name="text" size="50" placeholder="Write as the customer">
<input type="file" name="file" multiple><button>Send</button></form></div>
<div class="pane"><h3>Staff channel, as operator <select id="operator"><option value="0">operator
</option><option value="1">operator 2</option></select></h3><div id="staff"></div></div></div>
<div id="told"></div>
<script>
const $=s=>document.querySelector(s);
const post=(u,d)=>fetch(u,{method:'POST',body:new URLSearchParams(d)}).then(refresh);
// a message with its files (multipart), as the form holds them
function upload(u,f,d){const b=new FormData(f);for(const k in d)b.append(k,d[k]);
 fetch(u,{method:'POST',body:b}).then(refresh);}
function show(where,html){const e=$(where),a=document.activeElement;
 // what someone is typing into is left alone, and an unchanged pane is not redrawn
 if(e.dataset.html===html||(a&&/INPUT|SELECT/.test(a.tagName)&&e.contains(a)))return;
 e.innerHTML=html;e.dataset.html=html;}
function refresh(){fetch('/state?customer='+$('#customer').value).then(r=>r.json()).then(s=>{
 show('#dm',s.dm);show('#staff',s.staff);
 show('#told',s.told.map(t=>t.form?formHtml(t):'<div>'+esc(t.text)+'</div>').join(''));});}
const esc=t=>String(t).replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));
function formHtml(t){return '<form class="modal" data-form="'+esc(t.form)+'"><b>'+esc(t.title||'')+
 '</b>'+t.fields.map(f=>'<div>'+esc(f.label)+' '+fieldHtml(f)+'</div>').join('')+
 '<button>Submit</button></form>';}
function fieldHtml(f){if(!f.options.length)return '<input name="'+esc(f.id)+'">';
 return '<select name="'+esc(f.id)+'"><option value="">(choose)</option>'+f.options.map(o=>
 '<option>'+esc(o)+'</option>').join('')+'</select>';}
document.addEventListener('click',e=>{const b=e.target.closest('button.b');if(!b)return;
 post('/click',{where:b.dataset.where,message:b.dataset.message,id:b.dataset.id,
 customer:$('#customer').value,operator:$('#operator').value});});
document.addEventListener('submit',e=>{e.preventDefault();const f=e.target;
 if(f.id==='say'){upload('/say',f,{customer:$('#customer').value});f.reset();}
 else if(f.dataset.thread){upload('/write',f,{thread:f.dataset.thread,
  operator:$('#operator').value});f.reset();}
 else if(f.dataset.form){const v={};new FormData(f).forEach((x,k)=>v[k]=x);
  post('/submit',{form:f.dataset.form,values:JSON.stringify(v),operator:$('#operator').value});}});
$('#customer').onchange=refresh;setInterval(refresh,500);refresh();
</script></body></html>"""


def rehearsal_key(db: Path) -> str:
    """The deployer's HANDOFF_SECRET_KEY, or a throwaway key kept beside the rehearsal's database
    (``<db>.key``, readable by this user only), so the next rehearsal opens the same database."""
    given = os.environ.get("HANDOFF_SECRET_KEY", "").strip()
    if given:
        return given
    kept = Path(str(db) + ".key")
    if kept.exists():
        return kept.read_text().strip()
    key = throwaway_key()
    with os.fdopen(os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(key + "\n")
    return key


def deployer_paths() -> tuple[Path, Path, Path, str]:
    """The rehearsal's database, the policy, the knowledge folder (absolute, as the deployer's
    working directory names them; the shipped example's where theirs is missing) and a note."""
    here = Path.cwd()
    db = here / (os.environ.get("HANDOFF_REHEARSAL_DB", "").strip() or "data/rehearsal.db")
    policy = here / (os.environ.get("HANDOFF_POLICY", "").strip() or "policy.toml")
    knowledge = here / (os.environ.get("HANDOFF_KNOWLEDGE", "").strip() or "knowledge")
    note = ""
    if not policy.exists():
        note += f" No {policy.name} here: the example shop's policy is used."
        policy = ROOT / "policy.toml"
    if not knowledge.is_dir():
        knowledge = ROOT / "knowledge"
    return db, policy, knowledge, note


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 now (the OS's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rehearsal_agents(env: dict[str, str]) -> str:
    """The deployer's agents (``HANDOFF_MCP_TOKENS``) get an endpoint of the rehearsal's own, on
    127.0.0.1 and a free port (``HANDOFF_REHEARSAL_MCP_PORT`` to choose it), so they can be
    rehearsed too; never the deployer's webhooks (a receiver would act on outcomes that never
    happened: a call's own notify_url still works). Returns what the page says of it."""
    tokens = os.environ.get("HANDOFF_MCP_TOKENS", "").strip()
    if not tokens:
        return ""
    port = os.environ.get("HANDOFF_REHEARSAL_MCP_PORT", "").strip() or str(free_port())
    env.update(HANDOFF_MCP_TOKENS=tokens, HANDOFF_MCP_HOST="127.0.0.1", HANDOFF_MCP_PORT=port)
    return (
        f" Agents (HANDOFF_MCP_TOKENS): http://127.0.0.1:{port}/mcp, their webhooks off for the"
        " rehearsal."
    )


def startup_errors(log: Path, since: int) -> str:
    """What the bot logged as errors since ``since`` (bytes into its log): why it did not start."""
    with log.open("rb") as read:
        read.seek(since)
        lines = read.read().decode(errors="replace").splitlines()
    errors = [line for line in lines if " ERROR " in line or " CRITICAL " in line]
    return "\n".join(errors[-10:] or lines[-10:])


async def rehearse(port: int, customers: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        discord = await FakeDiscord().start()
        stack.push_async_callback(discord.stop)
        real = bool(os.environ.get("ANTHROPIC_API_KEY", "").strip())
        model = None if real else await _scripted()
        if model is not None:
            stack.push_async_callback(model.stop)
        db, policy, knowledge, where = deployer_paths()
        db.parent.mkdir(parents=True, exist_ok=True)
        throwaway = not os.environ.get("HANDOFF_SECRET_KEY", "").strip()
        env = bot_env(discord, db, policy, model.url if model else None, rehearsal_key(db))
        env["HANDOFF_KNOWLEDGE"] = str(knowledge)
        agents = rehearsal_agents(env)
        note = (
            ("Claude answers (ANTHROPIC_API_KEY)." if real else "A scripted model answers.")
            + (
                f" HANDOFF_SECRET_KEY was not set: a throwaway key ({db.name}.key) is used for"
                " this rehearsal's database."
                if throwaway
                else ""
            )
            + where
            + agents
        )
        # the page's port first: a port in use is said before anything starts
        runner = web.AppRunner(Page(discord, customers, note).app(), access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", port)
        try:
            await site.start()
        except OSError as exc:
            raise SystemExit(
                f"The rehearsal page cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose"
                " another port with --rehearse-port."
            ) from None
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log_path = Path(str(db) + ".log")
        log = stack.enter_context(log_path.open("ab"))  # noqa: ASYNC230 - once, at start
        since = log.tell()  # at its end: what this start writes comes after
        # in the deployer's directory: the same .env, and their relative paths mean what they say
        bot = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bot.py"), cwd=Path.cwd(), env=env, stdout=log, stderr=log
        )
        stack.push_async_callback(_stop_child, bot)  # however this ends: Ctrl-C, an error
        # the page is announced once the bot is connected: nothing written before is missed
        connected = asyncio.ensure_future(discord.identified.wait())
        exited = asyncio.ensure_future(bot.wait())
        try:
            done, _ = await asyncio.wait(
                {connected, exited}, timeout=60, return_when="FIRST_COMPLETED"
            )
        finally:
            connected.cancel()
            exited.cancel()
        if connected not in done:
            why = "stopped" if exited in done else "did not connect to the stand-in within 60 s"
            await _stop_child(bot)
            raise SystemExit(f"The bot {why}; from {log_path}:\n{startup_errors(log_path, since)}")
        print(f"Rehearsal at http://127.0.0.1:{bound}/ ({note}) Database: {db}; log: {log_path}.")
        print("Ctrl-C stops it.", flush=True)
        await bot.wait()
        print(f"the bot stopped (exit {bot.returncode}); see {log_path}", file=sys.stderr)


async def _stop_child(bot: asyncio.subprocess.Process) -> None:
    """The bot first, gracefully (SIGTERM: it finishes what is in flight), killed after 15 s."""
    if bot.returncode is not None:
        return
    bot.terminate()
    with contextlib.suppress(TimeoutError):
        await asyncio.shield(asyncio.wait_for(bot.wait(), 15))
    if bot.returncode is None:
        bot.kill()
        await bot.wait()


async def _scripted() -> FakeClaude:
    model = FakeClaude(default=scripted_reply)
    await model.start()
    return model


async def _until_stopped(port: int, customers: int) -> None:
    """SIGTERM (a service manager, a test) stops the rehearsal as Ctrl-C does: the bot first."""
    import signal

    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await rehearse(port, customers)


def main(port: int = 8787, customers: int = 3) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_until_stopped(port, customers))
    return 0
