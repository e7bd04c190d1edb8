"""Every setting, declared once: as a field of the typed class that holds its value, with its
kind, its default (written as in TOML), and its help. Validation (config.py), the README's
config reference, `digest check`, the JSON Schema (schema.py) all read these declarations, so
a setting cannot exist without documentation and a default lives in one place.

Values are held converted: durations as seconds, sizes as bytes, paths resolved against the
config file's folder. A field without `setting()` is not read from the file: the table's key
(`name`), or a value config.py resolves from others."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from datetime import time as dtime
from pathlib import Path

FEED_KINDS = ("auto", "feed", "hf-daily-papers", "json-feed")
SMTP_SECURITY = ("starttls", "ssl", "none")
CADENCES = ("daily", "weekly")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order


@dataclass(frozen=True)
class Setting:
    name: str  # the TOML key
    kind: str  # one of values._KINDS: str, int, float, bool, time, duration, retention, path…
    default: object  # None: unset, resolved from another section after validation
    help: str
    choices: tuple[str, ...] = ()
    required: bool = False
    attr: str = ""  # the field's name when the TOML key is a Python keyword ("from")
    minimum: float | None = None

    @property
    def field(self) -> str:
        return self.attr or self.name


def setting(kind: str, default: object, help: str, *, choices: tuple[str, ...] = (),
            required: bool = False, key: str = "", minimum: float | None = None):
    """A dataclass field read from the file. No Python default: config.py always passes the
    converted value, so the declared default cannot drift from a second copy here."""
    return field(metadata={"setting": (kind, default, help, choices, required, key, minimum)})


def settings_of(cls) -> tuple[Setting, ...]:
    """The Setting of each field declared with setting(), in declaration order."""
    out = []
    for f in fields(cls):
        if "setting" in f.metadata:
            kind, default, help, choices, required, key, minimum = f.metadata["setting"]
            out.append(Setting(key or f.name, kind, default, help, choices, required,
                               f.name if key else "", minimum))
    return tuple(out)


@dataclass(frozen=True)
class Section:
    """One of a reader's digest sections: its title, what feeds it (phrases, authors or
    categories) and at most how many items it takes (None: no cap)."""

    title: str
    match: tuple[str, ...]
    max: int | None = None


@dataclass(frozen=True)
class DigestSettings:
    title: str = setting('str', 'Daily digest', "The sender's name of every email and its header.")
    database: Path = setting('path', 'digest.db', 'SQLite file, relative to the config file.')
    timezone: str = setting('timezone', 'UTC', 'Default IANA time zone for readers.')
    send_time: dtime = setting('time', '07:00', 'Default local send time for readers (HH:MM).')
    max_items: int = setting('int', 20, 'Default number of items per digest.', minimum=1)
    base_url: str = setting('url', 'http://127.0.0.1:8750',
        'Where preview, feedback and unsubscribe links point.')
    outbox: Path = setting('path', 'outbox',
        'Folder the digests are written to as .eml files when there is no [smtp] section.')
    empty_day: str = setting('choice', 'skip',
        "A day with nothing above a reader's threshold: skip (no email; recorded) or send.",
        choices=('skip', 'send'))
    catch_up: int = setting('duration', '12h',
        '`digest run` sends a digest missed while it was down if it is at most this late; '
        'later ones are recorded as missed.')
    keep: int | None = setting('retention', '180d',
        "`digest run` deletes entry content older than this at start-up and once a day, as "
        '`digest prune` does (what a reader voted on stays, and so does every identity); '
        '"never" keeps all.')
    templates: Path | None = setting('path', '',
        'Folder of templates that override the built-in ones, file by file (digest.mjml, '
        'digest.txt, partials/...); default: the built-in ones.')
    allow_private_networks: bool = setting('bool', False,
        'Allow feeds on loopback, private and link-local addresses (off: SSRF guard).')
    every: int = setting('duration', '1h', 'Default poll interval for feeds.')
    max_backoff: int = setting('duration', '1d', 'Longest wait between retries of a failing feed.')
    timeout: float = setting('float', 30.0,
        'Seconds allowed for one feed download, connect to last byte.', minimum=0.1)
    max_feed_size: int = setting('size', '15MiB',
        'Largest feed body accepted, after decompression.')
    concurrency: int = setting('int', 8, 'Feeds downloaded at once.', minimum=1)
    per_host: int = setting('int', 2, 'Feeds downloaded at once from one host.', minimum=1)
    user_agent: str = setting('str', '',
        "User-Agent header; empty means 'digest/VERSION (self-hosted personal feed digest; "
        "...)'.")


@dataclass(frozen=True)
class RankingSettings:
    library: float = setting('float', 1.0,
        "Weight of TF-IDF similarity to the reader's seed papers and 👍 items.", minimum=0)
    semantic: float = setting('float', 1.0,
        'Weight of embedding similarity to the same (needs the semantic extra).', minimum=0)
    semantic_mode: str = setting('choice', 'auto',
        'Embeddings: auto (when the extra is installed), on (required) or off.',
        choices=('auto', 'on', 'off'))
    interests: float = setting('float', 1.0, "Weight of the reader's interest phrases.", minimum=0)
    authors: float = setting('float', 1.0, 'Weight of a followed author.', minimum=0)
    categories: float = setting('float', 1.0, 'Weight of a followed category.', minimum=0)
    feedback: float = setting('float', 1.0,
        'Weight of a 👍 item among the seed papers (1 = like a library paper); 👎 items count '
        'against with half of it.', minimum=0)
    popularity: float = setting('float', 0.1,
        'Weight of popularity (Hugging Face upvotes).', minimum=0)
    half_life: int = setting('duration', '7d', 'Relevance halves for every half_life of age.')
    min_score: float = setting('float', 3.0,
        'Items below this score stay out of the digest. Scores are in standard deviations '
        "above the pool's average similarity, plus points for phrases, authors and categories "
        "(README: Ranking), so one floor cuts every reader's digest alike.", minimum=0)
    lookback: int = setting('duration', '1d',
        "Window for a reader's first digest (later digests take all since the last one).")
    trending: int = setting('int', 1,
        'Popular items added to a digest besides the ranked ones (0 for none).', minimum=0)
    workers: int = setting('int', 0,  # resolved: 0 in the file means one per CPU core
        'Processes that rank readers in parallel (from 65 readers on); 0 means one per CPU '
        'core.', minimum=0)


@dataclass(frozen=True)
class SmtpSettings:
    host: str = setting('str', '', 'SMTP server host name.', required=True)
    port: int = setting('int', 587, 'SMTP port.', minimum=1)
    security: str = setting('choice', 'starttls', 'Transport security.', choices=SMTP_SECURITY)
    username: str = setting('str', '', 'SMTP login; empty means no login.')
    password_env: str = setting('env', '',
        'Name of the environment variable that holds the SMTP password.')
    sender: str = setting('str', '',
        "From address, e.g. 'Papers <digest@example.org>'.", required=True, key='from')
    timeout: float = setting('float', 30.0, 'Seconds allowed for each SMTP command.', minimum=0.1)
    retries: int = setting('int', 3,
        'Attempts per message after a temporary (4xx) reply, with doubling waits.', minimum=1)
    retry_wait: int = setting('duration', '30s', 'Wait before the second attempt; doubles after.')
    unsubscribe_mailto: str = setting('email', '',
        'An address for unsubscribe requests by mail, offered in List-Unsubscribe beside the '
        'link (mail clients without one-click use it); empty for none.')


@dataclass(frozen=True)
class WebSettings:
    password_env: str = setting('env', '',
        'Environment variable holding the password for the private pages (index, archive, '
        'health, unsigned digests) from anywhere but this machine; HTTP basic, so serve them '
        'over https. Empty: private pages only from this machine.')
    username: str = setting('str', 'digest', 'User name for that login.')
    trusted_proxies: tuple[str, ...] = setting('list', (),
        'Addresses or networks (CIDR) of your reverse proxies: only their X-Forwarded-For and '
        'Forwarded headers are believed.')
    link_days: int = setting('int', 0,
        'Days a "view in browser" link works; 0 for ever. Feedback and unsubscribe links '
        'never expire.', minimum=0)
    timeout: float = setting('float', 30.0,
        'Seconds a page may take; a slower one answers 503 and the others are not held up.',
        minimum=0.1)
    threads: int = setting('int', 4,
        'Pages built at once, off the event loop (one that timed out counts until it ends); '
        'past that a page answers 503 at once.', minimum=1)
    host: str = setting('str', '127.0.0.1', 'Address `digest run --web` listens on.')
    port: int = setting('int', 8750, 'Port `digest run --web` listens on.', minimum=1)


@dataclass(frozen=True)
class FeedConfig:
    name: str  # the [feeds.NAME] key
    url: str = setting('url', '', 'http(s) address of the feed (exactly one of url/path).')
    path: Path | None = setting('path', '',
        'Local feed file, relative to the config file (exactly one of url/path).')
    kind: str = setting('choice', 'auto',
        'How to read the feed: auto, feed (RSS/Atom), hf-daily-papers or json-feed.',
        choices=FEED_KINDS)
    every: int = setting('duration', '', 'Poll interval; default [digest] every.')
    title: str = setting('str', '', "Display name; default: the feed's own title.")

    @property
    def location(self) -> str:
        return self.url or str(self.path)


@dataclass(frozen=True)
class UserConfig:
    name: str  # the [users.NAME] key: identity in the ledger, votes and links
    email: str = setting('email', '',
        'Where the digest goes; may be left out when notify or notify_env is set.')
    display_name: str = setting('str', '',
        'How the reader is greeted; default: the table name. Only a label: the table name is '
        "the reader's identity in the ledger and in links.", key='name')
    timezone: str = setting('timezone', '', 'IANA time zone; default [digest] timezone.')
    send_time: dtime = setting('time', '', 'Local send time (HH:MM); default [digest] send_time.')
    max_items: int = setting('int', 0, 'Items per digest; 0 means [digest] max_items.', minimum=0)
    feeds: tuple[str, ...] = setting('list', (),
        'Feed names this reader follows; default: all feeds.')
    papers: Path | None = setting('path', '',
        'Seed library: a BibTeX (.bib) or CSL-JSON (.json) export.')
    authors: tuple[str, ...] = setting('list', (), 'Author names that boost an item.')
    exclude: tuple[str, ...] = setting('list', (), 'Phrases that demote an item.')
    categories: tuple[str, ...] = setting('list', (), 'Categories (e.g. cs.LG) that boost an item.')
    interests: dict[str, float] = setting('weights', {},
        'Phrase = weight table, e.g. "style transfer" = 2.')
    notify: tuple[str, ...] = setting('list', (),
        'Apprise URLs the digest also goes to as a chat message (slack://, tgram://, '
        'matrix://, ntfys://, json://…; needs the notify extra). A URL holding a token '
        'belongs in notify_env instead.')
    notify_env: tuple[str, ...] = setting('list', (),
        'Names of environment variables that each hold one Apprise URL: where tokens go.')
    send_days: tuple[str, ...] = setting('list', (),
        'Weekdays this reader gets a digest, e.g. ["mon", "wed", "fri"]; default every day. '
        'Each digest holds everything since the one before, so nothing falls between.')
    cadence: str = setting('choice', 'daily',
        'daily, or weekly: one digest a week, on Monday (or on the first of send_days).',
        choices=CADENCES)
    skip_weekends: bool = setting('bool', False, 'No digest on Saturday or Sunday.')
    popularity: float = setting('float', None,
        'Override of [ranking] popularity for this reader.', minimum=0)
    half_life: int = setting('duration', '', 'Override of [ranking] half_life for this reader.')
    sections: tuple[Section, ...] = setting('sections', (),
        'Digest sections in order, as a [users.NAME.sections] table of title = {match = '
        '[phrases, authors or categories], max = N}; an item goes to the first that fits and '
        'has room (max is optional), the rest to "More for you", all within max_items.')
    serendipity: int = setting('int', 0,
        'How many popular items from outside your profile to add, marked as such, so the '
        'ranking does not close in on itself.', minimum=0)
    updates: bool = setting('bool', True,
        'Tell of a new arXiv version of a paper you were sent or liked (once per version), '
        'in an Updated section.')
    # send_days holds the weekdays resolved from send_days, cadence and skip_weekends; the
    # overrides above hold the reader's value or [ranking]'s; timezone, send_time and
    # max_items the reader's or [digest]'s.

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


SECTIONS = {"digest": settings_of(DigestSettings), "ranking": settings_of(RankingSettings),
            "smtp": settings_of(SmtpSettings), "web": settings_of(WebSettings),
            "feeds": settings_of(FeedConfig), "users": settings_of(UserConfig)}
SECTION_TITLES = {"digest": "[digest]", "ranking": "[ranking]", "smtp": "[smtp]", "web": "[web]",
                  "feeds": "[feeds.NAME]", "users": "[users.NAME]"}


def settings_markdown() -> str:
    """The config reference for README.md, generated from the declarations above."""
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
