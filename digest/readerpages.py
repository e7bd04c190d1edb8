"""The pages a reader reaches from the links in an email: 👍/👎 (with mute), their own page
(votes, mutes, reset) and unsubscribe. Mail scanners fetch every link in a message, so GET and
HEAD only ever show a page; its buttons POST, accepted from our own pages or from no page
(RFC 8058 one-click), never from a foreign Origin. Every URL is signed (links.py): the signature
is the token. A mixin of preview.Preview, which serves them."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from digest.lexical import words
from digest.links import VOTES
from digest.models import iso_utc
from digest.store import Store


class ReaderPages:
    """Routes for Preview; they use its loaded(), page() and now()."""

    def feedback(self, request: Request, form: dict[str, str]) -> Response:
        """👍/👎 from an email. Mail scanners fetch every link in a message, so GET and HEAD
        only show the item and buttons; a button's POST records the vote (or undoes it), or
        mutes one of the item's authors or of the reader's phrases it matched."""
        lo = self.loaded()
        reader, entry_id, vote = (request.path_params[k] for k in ("reader", "entry", "vote"))
        if (reader not in lo.config.users or vote not in VOTES or not lo.links.verify(
                request.query_params.get("s", ""), "feedback", reader, entry_id, vote)):
            return self.page("message.html", 404, title="Not found", message="This link is not valid.")
        if request.method == "POST" and not same_origin(request, lo.config.digest.base_url):
            return foreign()
        user = lo.config.users[reader]
        muted = ""
        with Store(lo.config.digest.database) as store:
            entry = store.entry(entry_id)
            authors, phrases = _mutable(user, entry)
            if request.method == "POST":
                action, value = form.get("do", "vote"), form.get("value", "")
                if action == "undo":
                    store.remove_vote(reader, entry_id)
                elif action in ("mute-author", "mute-phrase"):
                    kind = action.removeprefix("mute-")
                    if value not in (authors if kind == "author" else phrases):
                        return self.page("message.html", 400, title="Cannot mute that",
                                         message="Only this item's authors and your phrases it "
                                         "matches can be muted from here.")
                    store.mute(reader, kind, value, self.now())
                    muted = value
                else:
                    store.set_vote(reader, entry_id, VOTES[vote], self.now())
            recorded = store.vote(reader, entry_id)
            mutes = {(k, v) for k, v, _ in store.mutes(reader)}
        return self.page("feedback.html", title="Feedback", what=entry.title if entry
                         else "this item", vote=vote, recorded=recorded, up=VOTES["up"],
                         posted=request.method == "POST" and not muted, muted=muted,
                         authors=[a for a in authors if ("author", a) not in mutes],
                         phrases=[p for p in phrases if ("phrase", p) not in mutes],
                         reader_page=lo.links.reader(reader).removeprefix(lo.links.base))

    def reader(self, request: Request, form: dict[str, str]) -> Response:
        """A reader's own page, from the signed link in every email's footer: their votes and
        mutes, with a button to reset the votes and one to unmute each. GET and HEAD only
        show; the buttons POST."""
        lo = self.loaded()
        reader = request.path_params["reader"]
        if reader not in lo.config.users or not lo.links.verify(
                request.query_params.get("s", ""), "reader", reader):
            return self.page("message.html", 404, title="Not found", message="This link is not valid.")
        if request.method == "POST" and not same_origin(request, lo.config.digest.base_url):
            return foreign()
        done = ""
        with Store(lo.config.digest.database) as store:
            if request.method == "POST":
                if form.get("do") == "reset":
                    n = store.reset_votes(reader)
                    done = f"Forgot {n} vote{'s' * (n != 1)}: your digests start afresh."
                elif form.get("do") == "unmute" and form.get("kind") in ("author", "phrase"):
                    store.unmute(reader, form["kind"], form.get("value", ""))
                    done = f"Unmuted {form.get('value', '')}."
            votes = store.votes(reader)
            titles = {e.id: e.title for e in store.entries_for_ranking(ids=list(votes))}
            mutes = store.mutes(reader)
            days = store.delivered(reader, limit=30)
        return self.page("reader.html", title="Your votes and mutes", reader=reader, done=done,
                         votes=[(titles.get(i, "(an item since pruned)"), v)
                                for i, v in sorted(votes.items())],
                         mutes=mutes, days=[(d, lo.links.view(reader, d)) for d, _ in days])

    def unsubscribe(self, request: Request, form: dict[str, str]) -> Response:
        """GET and HEAD show a confirmation with a button; only POST unsubscribes (the
        button, or a mail client's RFC 8058 one-click POST, "List-Unsubscribe=One-Click")."""
        lo = self.loaded()
        reader, sig = request.path_params["reader"], request.query_params.get("s", "")
        if reader not in lo.config.users or not lo.links.verify(sig, "unsubscribe", reader):
            return self.page("message.html", 404, title="Not found", message="This link is not valid.")
        if request.method != "POST":
            return self.page("unsubscribe.html", title="Unsubscribe", reader=reader, sig=sig)
        if not same_origin(request, lo.config.digest.base_url):
            return foreign()
        with Store(lo.config.digest.database) as store:
            store.set_reader(reader, unsubscribed_at=iso_utc(self.now()))
        return self.page("unsubscribed.html", title="Unsubscribed", reader=reader,
                         resubscribe=lo.links.resubscribe(reader).removeprefix(lo.links.base))

    def resubscribe(self, request: Request, form: dict[str, str]) -> Response:
        """POST only (the button on the unsubscribed page): undo an unsubscribe."""
        lo = self.loaded()
        reader, sig = request.path_params["reader"], request.query_params.get("s", "")
        if reader not in lo.config.users or not lo.links.verify(sig, "resubscribe", reader):
            return self.page("message.html", 404, title="Not found", message="This link is not valid.")
        if not same_origin(request, lo.config.digest.base_url):
            return foreign()
        with Store(lo.config.digest.database) as store:
            store.set_reader(reader, unsubscribed_at="")
        return self.page("message.html", title="Subscribed again",
                         message=f"{reader} gets the digest again from the next one on.")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def same_origin(request: Request, base_url: str) -> bool:
    """A POST from one of our pages, or from no page at all: a mail client's RFC 8058 one-click
    POST carries no Origin. A browser names the page it came from (Origin, else Referer), and
    that must be us; "null" (an opaque origin) is not. The signed URL is the token."""
    origin = request.headers.get("origin") or _origin(request.headers.get("referer", ""))
    if not origin:
        return True
    ours = {_origin(base_url), f"{request.url.scheme}://{request.headers.get('host', '')}".lower()}
    return origin.lower() in ours


def _mutable(user, entry) -> tuple[list[str], list[str]]:
    """What a reader may mute from an item's page: its authors, and those of their interest
    phrases whose words all occur in its title or abstract."""
    if entry is None:
        return [], []
    have = set(words(entry.title + " " + entry.summary_text))
    return entry.authors[:10], [p for p in user.interests if set(words(p)) <= have]


def foreign() -> Response:
    return PlainTextResponse("This form can only be sent from this digest's own pages.", 403)
