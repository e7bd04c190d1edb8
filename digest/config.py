"""config.toml → typed, validated settings (declared in settings.py).

Problems are collected, not raised one at a time: a config with five mistakes gets five
sentences, each naming the key, the reason and the fix.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from digest.errors import ConfigError
from digest.links import key_path
from digest.settings import (
    SECTIONS,
    WEEKDAYS,
    Config,
    DigestSettings,
    FeedConfig,
    RankingSettings,
    Setting,
    SmtpSettings,
    UserConfig,
    WebSettings,
)
from digest.values import EMAIL_RE, ENV_RE, convert, default, did_you_mean, mailbox, tname

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
INLINE_LOGIN_ADVICE = (
    "must not hold a password (secrets do not belong in a file); put it in an environment "
    'variable and name that with password_env = "DIGEST_SMTP_PASSWORD".'
)
Report = Callable[[str, str], None]


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

    def report(label: str, msg: str) -> None:
        problems.append(f"{path.name}: {label} {msg}")

    for key in data:
        if key not in SECTIONS:
            report(f"[{key}]", INLINE_LOGIN_ADVICE if key == "password" else
                   f"is not a known section{did_you_mean(key, SECTIONS)}; remove it or fix the "
                   "spelling.")

    def section(name: str) -> dict:
        value = data.get(name, {})
        if not isinstance(value, dict):
            report(f"[{name}]", f"must be a table, not {tname(value)}; write it as [{name}].")
            return {}
        return value

    digest = _digest(section("digest"), base, report)
    r = _read_table(section("ranking"), SECTIONS["ranking"], "[ranking]", base, report)
    ranking = RankingSettings(**r | {"workers": r["workers"] or os.cpu_count() or 1})
    web = _web(section("web"), base, report)
    smtp = _smtp(section("smtp"), base, report) if "smtp" in data else None
    feeds = _feeds(section("feeds"), digest, base, report)
    warnings += [f"{path.name}: [feeds.{n}] path {str(f.path)!r} does not exist yet; polling it "
                 "will fail until it does." for n, f in feeds.items()
                 if f.path is not None and not f.path.is_file()]
    users = {name: _user(name, table, digest, ranking, feeds, base, report)
             for name, table in _named_tables(section("users"), "users", report)}
    # A warning, as a feed's missing file is: an error would stop every reader's digest for
    # one reader's library; theirs is ranked without it (seeds.readable_library).
    warnings += [f"{path.name}: [users.{u.name}] papers file {str(u.papers)!r} does not exist; "
                 "their digest is ranked without it until it does: export the library as "
                 "BibTeX or CSL-JSON there, or fix the path (it is relative to the config file)."
                 for u in users.values() if u.papers is not None and not u.papers.is_file()]
    if problems:
        raise ConfigError(problems)
    if problem := base_url_problem(digest, smtp):
        warnings.append(problem)
    return Config(path=path, digest=digest, ranking=ranking, smtp=smtp, feeds=feeds, users=users,
                  web=web, warnings=tuple(warnings))


def _digest(table: dict, base: Path, report: Report) -> DigestSettings:
    d = _read_table(table, SECTIONS["digest"], "[digest]", base, report)
    d["templates"] = d["templates"] or None
    if d["templates"] is not None and not d["templates"].is_dir():
        report("[digest] templates", f"{str(d['templates'])!r} is not a folder; create it or "
               "remove the setting to use the built-in templates.")
    return DigestSettings(**d)


def _web(table: dict, base: Path, report: Report) -> WebSettings:
    web = WebSettings(**_read_table(table, SECTIONS["web"], "[web]", base, report))
    for proxy in web.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            report("[web] trusted_proxies", f"holds {proxy!r}, not an address or network; write "
                   'e.g. ["127.0.0.1", "10.0.0.0/8"].')
    return web


def _smtp(table: dict, base: Path, report: Report) -> SmtpSettings:
    if "password" in table:
        report("[smtp] password", INLINE_LOGIN_ADVICE)
        table = {k: v for k, v in table.items() if k != "password"}
    smtp = SmtpSettings(**_read_table(table, SECTIONS["smtp"], "[smtp]", base, report))
    if smtp.sender and not EMAIL_RE.match(mailbox(smtp.sender)[1]):
        report("[smtp] from", f"is {smtp.sender!r}, not an address; write it as "
               "'Papers <digest@example.org>' or digest@example.org.")
    if smtp.username and not smtp.password_env:
        report("[smtp] password_env", "is missing although username is set; name the "
               "environment variable that holds the password, e.g. "
               'password_env = "DIGEST_SMTP_PASSWORD".')
    return smtp


def _feeds(tables: dict, digest: DigestSettings, base: Path,
           report: Report) -> dict[str, FeedConfig]:
    feeds = {}
    for name, table in _named_tables(tables, "feeds", report):
        label = f"[feeds.{name}]"
        v = _read_table(table, SECTIONS["feeds"], label, base, report)
        has_url, has_path = "url" in table, "path" in table
        if has_url == has_path:
            report(label, "needs exactly one of url (a web feed) or path (a local file); "
                   f"it has {'both' if has_url else 'neither'}.")
        v["every"] = v["every"] or digest.every
        v["path"] = v["path"] if has_path and v["path"] else None
        feeds[name] = FeedConfig(name=name, **v)
    return feeds


def _user(name: str, table: dict, digest: DigestSettings, ranking: RankingSettings,
          feeds: dict[str, FeedConfig], base: Path, report: Report) -> UserConfig:
    label = f"[users.{name}]"
    v = _read_table(table, SECTIONS["users"], label, base, report)
    v["timezone"] = v["timezone"] or digest.timezone
    v["send_time"] = v["send_time"] or digest.send_time
    v["max_items"] = v["max_items"] or digest.max_items
    v["display_name"] = v["display_name"] or name
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
                   f"{did_you_mean(feed_name, feeds)}; add [feeds.{feed_name}] or fix the name.")
    return UserConfig(name=name, **v)


def _send_days(v: dict, label: str, report: Report) -> tuple[str, ...]:
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


def _named_tables(value: dict, section: str, report: Report):
    for name, table in value.items():
        if not NAME_RE.match(name):
            report(f"[{section}.{name}]", "has an unusable name; use letters, digits, '.', '_' or "
                   "'-' (at most 64), starting with a letter or digit.")
            continue
        if not isinstance(table, dict):
            report(f"[{section}] {name}", f"must be a table, not {tname(table)}; write it as "
                   f"[{section}.{name}] with its settings below.")
            continue
        yield name, table


def _read_table(table: dict, settings: tuple[Setting, ...], label: str, base: Path,
                report: Report) -> dict:
    known = {s.name: s for s in settings}
    for key in table:
        if key not in known:
            report(label, f"has unknown key {key!r}{did_you_mean(key, known)}; remove it or "
                   "fix the spelling.")
    out = {}
    for s in settings:
        if s.name in table:
            out[s.field] = convert(s, table[s.name], f"{label} {s.name}", base, report)
        else:
            if s.required:
                report(label, f"is missing {s.name!r} ({s.help[0].lower() + s.help[1:]}); add "
                       f"{s.name} = ... to it.")
            out[s.field] = default(s, base)
    return out


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
