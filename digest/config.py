"""config.toml → typed, validated settings.

Every setting is declared once, in the tables below (name, kind, default, help). Validation,
the `digest check` listing and the README's config reference all come from these tables, so a
setting cannot exist without documentation (tests/test_docs.py enforces the README side).

Problems are collected, not raised one at a time: a config with five mistakes gets five
sentences, each naming the key, the reason and the fix.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from datetime import time as dtime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import ConfigError
from digest.links import key_path

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3,
              "kb": 1000, "mb": 1000**2, "gb": 1000**3}
EMAIL_RE = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
_MAILBOX = re.compile(r"^\s*(.*?)\s*<([^<>]+)>\s*$", re.S)


def mailbox(value: str) -> tuple[str, str]:
    """'Name <addr>' or a bare address → (name, address). Split at the angle brackets, not
    at commas: an unquoted "Papers, daily <d@example.org>" is still one mailbox."""
    m = _MAILBOX.match(value)
    return (m.group(1).strip().strip('"').strip(), m.group(2).strip()) if m else ("", value.strip())


FEED_KINDS = ("auto", "feed", "hf-daily-papers", "json-feed")
SMTP_SECURITY = ("starttls", "ssl", "none")
CADENCES = ("daily", "weekly")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # str|int|float|bool|time|timezone|duration|size|url|email|path|choice|list|env|weights
    default: object  # None: unset, resolved from another section after validation
    help: str
    choices: tuple[str, ...] = ()
    required: bool = False
    attr: str = ""  # dataclass field name when the TOML key is a Python keyword ("from")
    minimum: float | None = None

    @property
    def field(self) -> str:
        return self.attr or self.name


DIGEST_SETTINGS = (
    Setting("title", "str", "Daily digest", "The sender's name of every email and its header."),
    Setting("database", "path", "digest.db", "SQLite file, relative to the config file."),
    Setting("timezone", "timezone", "UTC", "Default IANA time zone for readers."),
    Setting("send_time", "time", "07:00", "Default local send time for readers (HH:MM)."),
    Setting("max_items", "int", 20, "Default number of items per digest.", minimum=1),
    Setting("base_url", "url", "http://127.0.0.1:8750",
            "Where preview, feedback and unsubscribe links point."),
    Setting("outbox", "path", "outbox",
            "Folder the digests are written to as .eml files when there is no [smtp] section."),
    Setting("empty_day", "choice", "skip",
            "A day with nothing above a reader's threshold: skip (no email; recorded) or send.",
            choices=("skip", "send")),
    Setting("catch_up", "duration", "12h",
            "`digest run` sends a digest missed while it was down if it is at most this late; "
            "later ones are recorded as missed."),
    Setting("templates", "path", "",
            "Folder of templates that override the built-in ones, file by file (digest.mjml, "
            "digest.txt, partials/...); default: the built-in ones."),
    Setting("allow_private_networks", "bool", False,
            "Allow feeds on loopback, private and link-local addresses (off: SSRF guard)."),
    Setting("every", "duration", "1h", "Default poll interval for feeds."),
    Setting("max_backoff", "duration", "1d", "Longest wait between retries of a failing feed."),
    Setting("timeout", "float", 30.0,
            "Seconds allowed for one feed download, connect to last byte.", minimum=0.1),
    Setting("max_feed_size", "size", "15MiB",
            "Largest feed body accepted, after decompression."),
    Setting("concurrency", "int", 8, "Feeds downloaded at once.", minimum=1),
    Setting("per_host", "int", 2, "Feeds downloaded at once from one host.", minimum=1),
    Setting("user_agent", "str", "",
            "User-Agent header; empty means 'digest/VERSION (self-hosted personal feed digest; ...)'."),
)

RANKING_SETTINGS = (
    Setting("library", "float", 1.0,
            "Weight of TF-IDF similarity to the reader's seed papers and 👍 items.", minimum=0),
    Setting("semantic", "float", 1.0,
            "Weight of embedding similarity to the same (needs the semantic extra).", minimum=0),
    Setting("semantic_mode", "choice", "auto",
            "Embeddings: auto (when the extra is installed), on (required) or off.",
            choices=("auto", "on", "off")),
    Setting("interests", "float", 1.0, "Weight of the reader's interest phrases.", minimum=0),
    Setting("authors", "float", 1.0, "Weight of a followed author.", minimum=0),
    Setting("categories", "float", 1.0, "Weight of a followed category.", minimum=0),
    Setting("feedback", "float", 1.0,
            "Weight of a 👍 item among the seed papers (1 = like a library paper); 👎 items "
            "count against with half of it.", minimum=0),
    Setting("popularity", "float", 0.1, "Weight of popularity (Hugging Face upvotes).", minimum=0),
    Setting("half_life", "duration", "7d", "Relevance halves for every half_life of age."),
    Setting("min_score", "float", 3.0,
            "Items below this score stay out of the digest. Scores are in standard deviations "
            "above the pool's average similarity, plus points for phrases, authors and "
            "categories (README: Ranking), so one floor cuts every reader's digest alike.",
            minimum=0),
    Setting("lookback", "duration", "1d",
            "Window for a reader's first digest (later digests take all since the last one)."),
    Setting("trending", "int", 1,
            "Popular items added to a digest besides the ranked ones (0 for none).", minimum=0),
    Setting("workers", "int", 0,
            "Processes that rank readers in parallel (from 65 readers on); 0 means one per CPU "
            "core.", minimum=0),
)

SMTP_SETTINGS = (
    Setting("host", "str", "", "SMTP server host name.", required=True),
    Setting("port", "int", 587, "SMTP port.", minimum=1),
    Setting("security", "choice", "starttls", "Transport security.", choices=SMTP_SECURITY),
    Setting("username", "str", "", "SMTP login; empty means no login."),
    Setting("password_env", "env", "",
            "Name of the environment variable that holds the SMTP password."),
    Setting("from", "str", "", "From address, e.g. 'Papers <digest@example.org>'.",
            required=True, attr="sender"),
    Setting("timeout", "float", 30.0, "Seconds allowed for each SMTP command.", minimum=0.1),
    Setting("retries", "int", 3,
            "Attempts per message after a temporary (4xx) reply, with doubling waits.",
            minimum=1),
    Setting("retry_wait", "duration", "30s", "Wait before the second attempt; doubles after."),
    Setting("unsubscribe_mailto", "email", "",
            "An address for unsubscribe requests by mail, offered in List-Unsubscribe beside "
            "the link (mail clients without one-click use it); empty for none."),
)

WEB_SETTINGS = (
    Setting("password_env", "env", "",
            "Environment variable holding the password for the private pages (index, archive, "
            "health, unsigned digests) from anywhere but this machine; HTTP basic, so serve "
            "them over https. Empty: private pages only from this machine."),
    Setting("username", "str", "digest", "User name for that login."),
    Setting("trusted_proxies", "list", (),
            "Addresses or networks (CIDR) of your reverse proxies: only their X-Forwarded-For "
            "and Forwarded headers are believed."),
    Setting("link_days", "int", 0,
            "Days a \"view in browser\" link works; 0 for ever. Feedback and unsubscribe links "
            "never expire.", minimum=0),
    Setting("timeout", "float", 30.0,
            "Seconds a page may take; a slower one answers 503 and the others are not held up.",
            minimum=0.1),
    Setting("threads", "int", 4,
            "Pages built at once, off the event loop (one that timed out counts until it "
            "ends); past that a page answers 503 at once.", minimum=1),
    Setting("host", "str", "127.0.0.1", "Address `digest run --web` listens on."),
    Setting("port", "int", 8750, "Port `digest run --web` listens on.", minimum=1),
)

FEED_SETTINGS = (
    Setting("url", "url", "", "http(s) address of the feed (exactly one of url/path)."),
    Setting("path", "path", "", "Local feed file, relative to the config file (exactly one of url/path)."),
    Setting("kind", "choice", "auto",
            "How to read the feed: auto, feed (RSS/Atom), hf-daily-papers or json-feed.",
            choices=FEED_KINDS),
    Setting("every", "duration", "", "Poll interval; default [digest] every."),
    Setting("title", "str", "", "Display name; default: the feed's own title."),
)

USER_SETTINGS = (
    Setting("email", "email", "", "Where the digest goes; may be left out when notify or "
            "notify_env is set."),
    Setting("name", "str", "", "How the reader is greeted; default: the table name. Only a "
            "label: the table name is the reader's identity in the ledger and in links.",
            attr="display_name"),
    Setting("timezone", "timezone", "", "IANA time zone; default [digest] timezone."),
    Setting("send_time", "time", "", "Local send time (HH:MM); default [digest] send_time."),
    Setting("max_items", "int", 0, "Items per digest; 0 means [digest] max_items.", minimum=0),
    Setting("feeds", "list", (), "Feed names this reader follows; default: all feeds."),
    Setting("papers", "path", "", "Seed library: a BibTeX (.bib) or CSL-JSON (.json) export."),
    Setting("authors", "list", (), "Author names that boost an item."),
    Setting("exclude", "list", (), "Phrases that demote an item."),
    Setting("categories", "list", (), "Categories (e.g. cs.LG) that boost an item."),
    Setting("interests", "weights", {}, "Phrase = weight table, e.g. \"style transfer\" = 2."),
    Setting("notify", "list", (),
            "Apprise URLs the digest also goes to as a chat message (slack://, tgram://, "
            "matrix://, ntfys://, json://…; needs the notify extra). A URL holding a token "
            "belongs in notify_env instead."),
    Setting("notify_env", "list", (),
            "Names of environment variables that each hold one Apprise URL: where tokens go."),
    Setting("send_days", "list", (),
            'Weekdays this reader gets a digest, e.g. ["mon", "wed", "fri"]; default every day. '
            "Each digest holds everything since the one before, so nothing falls between."),
    Setting("cadence", "choice", "daily",
            "daily, or weekly: one digest a week, on Monday (or on the first of send_days).",
            choices=CADENCES),
    Setting("skip_weekends", "bool", False, "No digest on Saturday or Sunday."),
    Setting("popularity", "float", None, "Override of [ranking] popularity for this reader.",
            minimum=0),
    Setting("half_life", "duration", "", "Override of [ranking] half_life for this reader."),
)

SECTIONS = {"digest": DIGEST_SETTINGS, "ranking": RANKING_SETTINGS, "smtp": SMTP_SETTINGS,
            "web": WEB_SETTINGS, "feeds": FEED_SETTINGS, "users": USER_SETTINGS}


@dataclass(frozen=True)
class DigestSettings:
    title: str
    database: Path
    timezone: str
    send_time: dtime
    max_items: int
    base_url: str
    outbox: Path
    empty_day: str
    catch_up: int  # seconds
    templates: Path | None
    allow_private_networks: bool
    every: int
    max_backoff: int
    timeout: float
    max_feed_size: int
    concurrency: int
    per_host: int
    user_agent: str


@dataclass(frozen=True)
class RankingSettings:
    library: float
    semantic: float
    semantic_mode: str
    interests: float
    authors: float
    categories: float
    feedback: float
    popularity: float
    half_life: int  # seconds
    min_score: float
    lookback: int  # seconds
    trending: int
    workers: int  # resolved: 0 in the file means one per CPU core


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    username: str
    password_env: str
    sender: str
    timeout: float
    retries: int
    retry_wait: int  # seconds
    unsubscribe_mailto: str


@dataclass(frozen=True)
class WebSettings:
    password_env: str
    username: str
    trusted_proxies: tuple[str, ...]
    link_days: int
    timeout: float
    threads: int
    host: str
    port: int


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str
    path: Path | None
    kind: str
    every: int  # seconds
    title: str

    @property
    def location(self) -> str:
        return self.url or str(self.path)


@dataclass(frozen=True)
class UserConfig:
    name: str  # the [users.NAME] key: identity in the ledger, votes and links
    email: str
    display_name: str  # `name = "…"`, or the key: how the email greets them
    timezone: str
    send_time: dtime
    max_items: int
    feeds: tuple[str, ...]
    papers: Path | None
    authors: tuple[str, ...]
    exclude: tuple[str, ...]
    categories: tuple[str, ...]
    interests: dict[str, float] = field(default_factory=dict)
    notify: tuple[str, ...] = ()
    notify_env: tuple[str, ...] = ()
    send_days: tuple[str, ...] = WEEKDAYS  # resolved from send_days, cadence, skip_weekends
    cadence: str = "daily"
    skip_weekends: bool = False
    popularity: float = 0.1  # resolved: the reader's override or [ranking] popularity
    half_life: int = 7 * 86400

    @property
    def has_profile(self) -> bool:
        return bool(self.interests or self.papers or self.authors or self.categories)

    def sends_on(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.send_days

    def previous_send_day(self, day: date) -> date:
        """The latest send day before `day` (the start of its digest's window)."""
        back = next(k for k in range(1, 8) if self.sends_on(day - timedelta(days=k)))
        return day - timedelta(days=back)


@dataclass(frozen=True)
class Config:
    path: Path
    digest: DigestSettings
    ranking: RankingSettings
    smtp: SmtpSettings | None
    feeds: dict[str, FeedConfig]
    users: dict[str, UserConfig]
    web: WebSettings
    warnings: tuple[str, ...] = ()


def base_url_problem(digest: DigestSettings, smtp: SmtpSettings | None) -> str:
    """With real mail, links must reach readers: a loopback, private or plain-http base_url
    sends them to the operator's own machine, or in clear text. '' when fine (or outbox)."""
    if smtp is None:
        return ""
    parts = urlsplit(digest.base_url)
    host = (parts.hostname or "").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    where = ("loopback" if host == "localhost" or (ip and ip.is_loopback) else
             "a private address" if (ip and (ip.is_private or ip.is_link_local))
             or host.endswith((".local", ".internal", ".lan")) or "." not in host else "")
    if where:
        return (f"[digest] base_url is {digest.base_url}, {where}: every feedback, unsubscribe "
                "and view link in every email points where readers cannot reach; set it to the "
                "public https address that reaches `digest preview`.")
    if parts.scheme != "https":
        return (f"[digest] base_url is {digest.base_url}, plain http: links travel in clear "
                "text and mail clients offer no one-click unsubscribe; serve it over https and "
                "set base_url to the https address.")
    return ""


def exposed_files(config: Config) -> list[str]:
    """Warnings for the files that hold readers' addresses, digests or the link key and that
    other users of this machine can read."""
    db = config.digest.database
    out = []
    for path in (db, db.with_name(db.name + "-wal"), key_path(db), config.digest.outbox):
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            continue
        if mode & 0o077:
            fix = "700" if path.is_dir() else "600"
            out.append(f"{path} can be read by other users of this machine (mode "
                       f"{mode:o}); run `chmod {fix} {path}`.")
    return out


def load_config(path: Path) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such config file; pass --config PATH, set DIGEST_CONFIG, "
                           "or run `digest init` to write one."]) from None
    except OSError as e:
        raise ConfigError([f"{path}: cannot read the config file ({e.strerror}); "
                           "check its permissions."]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text; save the file as UTF-8."]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([_toml_error(path, raw.decode("utf-8"), e)]) from None
    return parse_config(data, path)


def _toml_error(path: Path, text: str, e: tomllib.TOMLDecodeError) -> str:
    msg = str(e)
    m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
    if not m:
        return f"{path}: invalid TOML ({msg}); fix the syntax."
    line = int(m.group(1))
    reason = msg[: m.start()].strip()
    lines = text.splitlines()
    shown = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    return (f"{path} line {line}: invalid TOML ({reason}) in `{shown}`; fix the syntax on "
            "that line (strings need quotes, tables look like [feeds.name]).")


def parse_config(data: dict, path: Path) -> Config:
    problems: list[str] = []
    warnings: list[str] = []
    base = path.parent
    where = path.name

    def report(label: str, msg: str) -> None:
        problems.append(f"{where}: {label} {msg}")

    for key in data:
        if key not in SECTIONS:
            if key == "password":
                report(f"[{key}]", INLINE_LOGIN_ADVICE)
            else:
                report(f"[{key}]", f"is not a known section{_did_you_mean(key, SECTIONS)}; "
                       "remove it or fix the spelling.")

    def section(name: str) -> dict:
        value = data.get(name, {})
        if not isinstance(value, dict):
            report(f"[{name}]", f"must be a table, not {_tname(value)}; write it as [{name}].")
            return {}
        return value

    d = _read_table(section("digest"), DIGEST_SETTINGS, "[digest]", base, report)
    d["templates"] = d.get("templates") or None
    if d["templates"] is not None and not d["templates"].is_dir():
        report("[digest] templates", f"{str(d['templates'])!r} is not a folder; create it or "
               "remove the setting to use the built-in templates.")
    digest = DigestSettings(**d)
    r = _read_table(section("ranking"), RANKING_SETTINGS, "[ranking]", base, report)
    r["workers"] = r.get("workers") or os.cpu_count() or 1
    ranking = RankingSettings(**r)

    web = WebSettings(**_read_table(section("web"), WEB_SETTINGS, "[web]", base, report))
    for proxy in web.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            report("[web] trusted_proxies", f"holds {proxy!r}, not an address or network; write "
                   'e.g. ["127.0.0.1", "10.0.0.0/8"].')

    smtp = None
    if "smtp" in data:
        s = section("smtp")
        if "password" in s:
            report("[smtp] password", INLINE_LOGIN_ADVICE)
            s = {k: v for k, v in s.items() if k != "password"}
        smtp = SmtpSettings(**_read_table(s, SMTP_SETTINGS, "[smtp]", base, report))
        if smtp.sender and not EMAIL_RE.match(mailbox(smtp.sender)[1]):
            report("[smtp] from", f"is {smtp.sender!r}, not an address; write it as "
                   "'Papers <digest@example.org>' or digest@example.org.")
        if smtp.username and not smtp.password_env:
            report("[smtp] password_env", "is missing although username is set; name the "
                   "environment variable that holds the password, e.g. "
                   'password_env = "DIGEST_SMTP_PASSWORD".')

    feeds: dict[str, FeedConfig] = {}
    for name, table in _named_tables(section("feeds"), "feeds", report):
        label = f"[feeds.{name}]"
        v = _read_table(table, FEED_SETTINGS, label, base, report)
        has_url, has_path = "url" in table, "path" in table
        if has_url == has_path:
            report(label, "needs exactly one of url (a web feed) or path (a local file); "
                   f"it has {'both' if has_url else 'neither'}.")
        v["every"] = v["every"] or digest.every
        v["path"] = v["path"] if has_path and v["path"] else None
        feed = FeedConfig(name=name, **v)
        if feed.path is not None and not feed.path.is_file():
            warnings.append(f"{where}: {label} path {str(feed.path)!r} does not exist yet; "
                            "polling it will fail until it does.")
        feeds[name] = feed

    users: dict[str, UserConfig] = {}
    for name, table in _named_tables(section("users"), "users", report):
        label = f"[users.{name}]"
        v = _read_table(table, USER_SETTINGS, label, base, report)
        v["timezone"] = v["timezone"] or digest.timezone
        v["send_time"] = v["send_time"] or digest.send_time
        v["max_items"] = v["max_items"] or digest.max_items
        v["name"], v["display_name"] = name, v["display_name"] or name
        v["papers"] = v["papers"] or None
        v["popularity"] = ranking.popularity if v["popularity"] is None else v["popularity"]
        v["half_life"] = v["half_life"] or ranking.half_life
        v["send_days"] = _send_days(v, label, report)
        if not ("email" in table or v["notify"] or v["notify_env"]):
            report(label, "is missing 'email' (where the digest goes); add email = "
                   '"name@example.org", or notify channels instead.')
        for env in v["notify_env"]:
            if not ENV_RE.match(env):
                report(f"{label} notify_env", f"names {env!r}, not an environment variable; "
                       "name the variable (e.g. SLACK_URL), not its value.")
        for feed_name in v["feeds"]:
            if feed_name not in feeds:
                report(f"{label} feeds", f"names {feed_name!r}, which is not a feed"
                       f"{_did_you_mean(feed_name, feeds)}; add [feeds.{feed_name}] or fix the name.")
        if v["papers"] is not None and not v["papers"].is_file():
            report(f"{label} papers", f"file {str(v['papers'])!r} does not exist; export your "
                   "library as BibTeX or CSL-JSON there, or fix the path (it is relative to "
                   "the config file).")
        users[name] = UserConfig(**v)

    if problems:
        raise ConfigError(problems)
    if problem := base_url_problem(digest, smtp):
        warnings.append(problem)
    return Config(path=path, digest=digest, ranking=ranking, smtp=smtp, feeds=feeds, users=users,
                  web=web, warnings=tuple(warnings))


def _send_days(v: dict, label: str, report) -> tuple[str, ...]:
    """send_days, cadence and skip_weekends as the weekdays a reader gets a digest on."""
    days = [d.strip().lower()[:3] for d in v["send_days"]]
    for d, raw in zip(days, v["send_days"], strict=True):
        if d not in WEEKDAYS:
            report(f"{label} send_days", f"names {raw!r}, which is not a weekday; write them "
                   'as "mon", "tue", … "sun".')
    days = [d for d in days if d in WEEKDAYS] or list(WEEKDAYS)
    if v["cadence"] == "weekly":
        days = days[:1] if v["send_days"] else ["mon"]
    if v["skip_weekends"]:
        days = [d for d in days if d not in ("sat", "sun")]
        if not days:
            report(f"{label} skip_weekends", "leaves no day to send on (send_days are all at "
                   "the weekend); drop one of the two.")
    return tuple(d for d in WEEKDAYS if d in days) or WEEKDAYS


INLINE_LOGIN_ADVICE = (
    "must not hold a password (secrets do not belong in a file); put it in an environment "
    'variable and name that with password_env = "DIGEST_SMTP_PASSWORD".'
)


def _named_tables(value: dict, section: str, report):
    for name, table in value.items():
        if not NAME_RE.match(name):
            report(f"[{section}.{name}]", "has an unusable name; use letters, digits, '.', '_' or "
                   "'-' (at most 64), starting with a letter or digit.")
            continue
        if not isinstance(table, dict):
            report(f"[{section}] {name}", f"must be a table, not {_tname(table)}; write it as "
                   f"[{section}.{name}] with its settings below.")
            continue
        yield name, table


def _read_table(table: dict, settings: tuple[Setting, ...], label: str, base: Path, report) -> dict:
    known = {s.name: s for s in settings}
    for key in table:
        if key not in known:
            report(label, f"has unknown key {key!r}{_did_you_mean(key, known)}; remove it or "
                   "fix the spelling.")
    out = {}
    for s in settings:
        if s.name in table:
            out[s.field] = _convert(s, table[s.name], f"{label} {s.name}", base, report)
        else:
            if s.required:
                report(label, f"is missing {s.name!r} ({s.help[0].lower() + s.help[1:]}); add "
                       f"{s.name} = ... to it.")
            out[s.field] = _default(s, base)
    return out


def _default(s: Setting, base: Path):
    """The declared default, converted like a user value (defaults are written as in TOML)."""
    if s.kind in ("time", "duration", "size", "path") and s.default:
        return _convert(s, s.default, "", base, _never)
    return dict(s.default) if isinstance(s.default, dict) else s.default


def _never(label: str, msg: str) -> None:
    raise AssertionError(f"invalid built-in default: {msg}")


def _convert(s: Setting, value, label: str, base: Path, report):
    def bad(reason: str, fix: str):
        report(label, f"{reason}; {fix}.")
        return _default(s, base)

    k = s.kind
    if k in ("str", "url", "email", "env", "choice", "time", "timezone", "path") and not isinstance(
            value, str):
        return bad(f"must be a string, not {_tname(value)}", f'put it in quotes: {s.name} = "..."')
    if k == "str":
        return value
    if k == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return bad(f"must be a whole number, not {_tname(value)}", f"write e.g. {s.name} = "
                       f"{s.default or 1}")
        if s.minimum is not None and value < s.minimum:
            return bad(f"is {value}, below the minimum {int(s.minimum)}", "raise it")
        return value
    if k == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return bad(f"must be a number, not {_tname(value)}", f"write e.g. {s.name} = {s.default}")
        if s.minimum is not None and value < s.minimum:
            return bad(f"is {value}, below the minimum {s.minimum}", "raise it")
        return float(value)
    if k == "bool":
        if not isinstance(value, bool):
            return bad(f"must be true or false, not {_tname(value)}", "write true or false "
                       "without quotes")
        return value
    if k == "choice":
        if value not in s.choices:
            return bad(f"is {value!r}, which is not one of {', '.join(s.choices)}",
                       f"pick one{_did_you_mean(value, s.choices)}")
        return value
    if k == "time":
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            return bad(f"is {value!r}, not a time of day", 'write 24-hour HH:MM, e.g. "07:30"')
        return dtime(int(m.group(1)), int(m.group(2)))
    if k == "timezone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            return bad(f"is {value!r}, not a known time zone",
                       'use an IANA name such as "Europe/Berlin" or "America/New_York"')
        return value
    if k == "duration":
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        m = DURATION_RE.match(value) if isinstance(value, str) else None
        if not m or float(m.group(1)) <= 0:
            return bad(f"is {value!r}, not a duration", 'write a number and a unit, e.g. "30m", '
                       '"1h" or "1d"')
        return int(float(m.group(1)) * DURATION_UNITS[m.group(2)])
    if k == "size":
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        m = SIZE_RE.match(value) if isinstance(value, str) else None
        if not m or float(m.group(1)) <= 0:
            return bad(f"is {value!r}, not a size", 'write e.g. "15MiB" or a number of bytes')
        return int(float(m.group(1)) * SIZE_UNITS[(m.group(2) or "b").lower()])
    if k == "url":
        if not re.match(r"^https?://[^\s/]+", value):
            fix = ("local files go in path = \"...\"" if value.startswith(("file:", "/", ".")) else
                   "write a full http:// or https:// address")
            return bad(f"is {value!r}, not an http(s) URL", fix)
        return value.rstrip("/") if s.name == "base_url" else value
    if k == "email":
        if not EMAIL_RE.match(value):
            return bad(f"is {value!r}, not an email address", "write it as name@example.org")
        return value
    if k == "env":
        if value and not ENV_RE.match(value):
            return bad(f"is {value!r}, not an environment variable name",
                       "name the variable (e.g. DIGEST_SMTP_PASSWORD), not its value")
        return value
    if k == "path":
        return (base / value).resolve() if value else value
    if k == "list":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            return bad(f"must be a list of strings, not {_tname(value)}",
                       f'write e.g. {s.name} = ["first", "second"]')
        return tuple(value)
    if k == "weights":
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return {x: 1.0 for x in value}
        if not isinstance(value, dict):
            return bad(f"must be a table of phrase = weight, not {_tname(value)}",
                       f'write [{label.split()[0][1:-1]}.interests] and lines like "topic" = 2')
        out = {}
        for phrase, w in value.items():
            if isinstance(w, bool) or not isinstance(w, int | float):
                report(f"{label} {phrase!r}", f"has weight {w!r}, not a number; write e.g. "
                       f'"{phrase}" = 2')
                continue
            out[phrase] = float(w)
        return out
    raise AssertionError(f"unhandled setting kind {k}")


def _did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _tname(value) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


SECTION_TITLES = {"digest": "[digest]", "ranking": "[ranking]", "smtp": "[smtp]", "web": "[web]",
                  "feeds": "[feeds.NAME]", "users": "[users.NAME]"}


def settings_markdown() -> str:
    """The config reference for README.md, generated from the settings tables above."""
    out = []
    for section, settings in SECTIONS.items():
        out.append(f"**`{SECTION_TITLES[section]}`**\n\n| key | default | meaning |\n|---|---|---|")
        for s in settings:
            out.append(f"| `{s.name}` | {_show_default(s)} | {s.help} |")
        out.append("")
    return "\n".join(out).strip() + "\n"


def _show_default(s: Setting) -> str:
    if s.required:
        return "required"
    if isinstance(s.default, bool):
        return f"`{str(s.default).lower()}`"
    if s.default in ("", (), {}, None):
        return "—"
    if isinstance(s.default, str):
        return f'`"{s.default}"`'
    return f"`{s.default}`"
