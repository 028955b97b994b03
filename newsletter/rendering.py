"""Rendering an edition: Jinja2 + premailer ONCE per ordered language set.

A variant is rendered with placeholder tokens where the personal parts go (unsubscribe link,
greeting with the name); messages.py turns it into a bytes template and substitutes per
recipient. The same ArticleView list feeds the web archive page.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, ClassVar

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup
from premailer import Premailer
from sqlalchemy.orm import Session

from newsletter import i18n
from newsletter.config import Settings
from newsletter.errors import EditionIncomplete
from newsletter.languages import LANGUAGES
from newsletter.links import archive_url
from newsletter.models import Edition, Trend
from newsletter.paths import templates_dir

# Gmail clips HTML above 102 KB; cut bodies well before that (placeholders are shorter than
# the real links, and the mailcheck size check warns from 85 %).
HTML_SIZE_LIMIT = 95_000

# Colour AND a symbol AND the words: never colour alone. Each colour has a contrast of at
# least 4.5:1 on white (WCAG AA for normal text).
TREND_STYLE: dict[Trend, tuple[str, str]] = {
    Trend.improved: ("#1a7a35", "▲"),
    Trend.worsened: ("#b3261e", "▼"),
    Trend.unchanged: ("#545d68", "■"),
}


@dataclass(frozen=True)
class ArticleView:
    """One article as a reader sees it in one language (email and archive page)."""

    slug: str
    position: int
    topic_slug: str
    topic: str
    trend: Trend
    trend_label: str
    trend_color: str
    trend_symbol: str
    title: str
    body_markdown: str
    body_html: Markup
    lang: str  # the language of title and body (the fallback's when not yet translated)
    fallback: bool
    read_more_url: str | None = None  # set when the body was cut to fit the size limit

    @property
    def body_text(self) -> str:
        return markdown_to_text(self.body_markdown)


@dataclass(frozen=True)
class Section:
    """One language's part of an email."""

    lang: str
    name: str
    title: str
    week_range: str
    archive_url: str
    articles: list[ArticleView]
    gettext: Callable[[str], str]
    not_translated_note: str


@dataclass(frozen=True)
class RenderedVariant:
    """What one ordered language set renders to, placeholders still in place."""

    languages: tuple[str, ...]
    subject: str
    html: str
    text: str
    truncated: bool


# --------------------------------------------------------------------------- Markdown

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_md.disable(["image"])  # no images at all: remote ones track readers; privacy first


def _safe_link(url: str) -> bool:
    # Only absolute web and mail links: relative ones point nowhere from a mailbox.
    return bool(re.match(r"^(https?://|mailto:)", url.strip(), re.IGNORECASE))


_md.validateLink = _safe_link  # type: ignore[method-assign]


def markdown_to_html(text: str) -> Markup:
    """Markdown to safe HTML: raw HTML is escaped, images and unsafe links are dropped."""
    return Markup(_md.render(text))  # safe: markdown-it escapes raw HTML (html=False)


def first_paragraphs(text: str, count: int = 1) -> str:
    """The first `count` Markdown paragraphs (blank-line separated) of a body."""
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    return "\n\n".join(blocks[:count]) + "\n"


def markdown_to_text(text: str, width: int = 76) -> str:
    """A plain-text rendering of a Markdown body: paragraphs wrapped, links kept readable."""
    plain = re.sub(r"\[([^\]]+)\]\((\S+?)\)", r"\1 (\2)", text)
    plain = re.sub(r"(\*\*|\*|`)(\S|\S.*?\S)\1", r"\2", plain)
    # Underscores emphasise only at word edges (CommonMark, as the HTML part): snake_case and
    # other text with inner underscores stays as typed.
    plain = re.sub(r"(?<!\w)(__|_)(\S|\S.*?\S)\1(?!\w)", r"\2", plain)
    paragraphs = [p for p in re.split(r"\n\s*\n", plain.strip()) if p.strip()]
    return "\n\n".join(
        textwrap.fill(" ".join(p.split()), width, break_long_words=False, break_on_hyphens=False)
        for p in paragraphs
    )


# --------------------------------------------------------------------------- sections


def edition_sections(
    session: Session,
    edition: Edition,
    lang: str,
    fallback_language: str | None = None,
    *,
    base_url: str | None = None,
) -> list[ArticleView]:
    """The edition's articles in `lang`, in order; missing texts come from the fallback
    language (marked `fallback`), or EditionIncomplete is raised."""
    views: list[ArticleView] = []
    for article in edition.articles:
        text = article.translation(lang)
        fallback = False
        if text is None and fallback_language:
            text, fallback = article.translation(fallback_language), True
        if text is None:
            raise EditionIncomplete(
                f"edition {edition.week}: article {article.slug} has no {lang} text"
                + (f" nor {fallback_language}" if fallback_language else "")
                + "; translate it or choose a fallback language"
            )
        names = article.topic.names or {}
        color, symbol = TREND_STYLE[article.trend]
        views.append(
            ArticleView(
                slug=article.slug,
                position=article.position,
                topic_slug=article.topic.slug,
                topic=names.get(lang) or names.get(text.lang) or article.topic.slug,
                trend=article.trend,
                trend_label=i18n.trend_label(article.trend, lang),
                trend_color=color,
                trend_symbol=symbol,
                title=text.title,
                body_markdown=text.body,
                body_html=markdown_to_html(text.body),
                lang=text.lang,
                fallback=fallback,
            )
        )
    return views


def edition_subject(edition: Edition, lang: str) -> str:
    """The staff's subject for that language, or '<digest title>: <week range>'."""
    custom = (edition.subjects or {}).get(lang)
    if custom:
        return " ".join(custom.split())  # one line, whatever was stored
    return f"{i18n.digest_title(lang)}: {i18n.format_week_range(edition.week, lang)}"


def _cut(views: list[ArticleView], read_more: str, paragraphs: int) -> list[ArticleView]:
    out = []
    for view in views:
        body = first_paragraphs(view.body_markdown, paragraphs) if paragraphs else ""
        out.append(
            replace(
                view,
                body_markdown=body,
                body_html=markdown_to_html(body) if body else Markup(""),
                read_more_url=f"{read_more}#{view.slug}",
            )
        )
    return out


# --------------------------------------------------------------------------- Jinja2


@cache
def email_environment() -> Environment:
    """One Jinja2 environment for every email: autoescaped HTML, plain text as is."""
    env = Environment(
        loader=FileSystemLoader(templates_dir() / "email"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    return env


def warm_up() -> None:
    """Compile every email template and catalog and start premailer once, so that a worker's
    first message does not wait for them (a worker calls this as it starts)."""
    env = email_environment()
    for name in env.list_templates():
        env.get_template(name)
    for lang in LANGUAGES:
        i18n.translations(lang)
        i18n.format_week_range("2020-W01", lang)
    inline_css("<html><head><style>p { color: #000 }</style></head><body><p>.</p></body></html>")


def render_email(name: str, lang: str, context: Mapping[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html before inlining) of templates/email/<name>/ in `lang`."""
    env = email_environment()
    tr = i18n.translations(lang)
    ctx = {"_": tr.gettext, "gettext": tr.gettext, "ngettext": tr.ngettext, **context}
    subject = " ".join(env.get_template(f"{name}/subject.txt").render(ctx).split())
    ctx.setdefault("subject", subject)
    text = env.get_template(f"{name}/body.txt").render(ctx)
    html = env.get_template(f"{name}/body.html").render(ctx)
    text = re.sub(r"\n{3,}", "\n\n", text.strip()) + "\n"
    return subject, text, html


# premailer logs every CSS property it does not know (e.g. mso-*) through cssutils.
logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)


class _Premailer(Premailer):  # type: ignore[misc]
    """premailer with each stylesheet's rules parsed once per process, not once per inlining:
    every variant of every edition has the same stylesheet, and parsing and re-serialising it
    through cssutils was three quarters of an inlining's cost."""

    _parsed: ClassVar[dict[tuple[str, int], tuple[list[Any], list[Any]]]] = {}
    # The rules left in a <style> (@media), serialised: keyed by the ids of the cached rule
    # objects, which _parsed keeps alive for as long as this holds their text.
    _serialised: ClassVar[dict[tuple[int, ...], str]] = {}

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], list[Any]]:
        key = (css_body, ruleset_index)
        parsed = self._parsed.get(key)
        if parsed is None:
            if len(self._parsed) >= 32:  # a handful of stylesheets exist; never grow
                self._parsed.clear()
                self._serialised.clear()
            parsed = self._parsed[key] = super()._parse_style_rules(css_body, ruleset_index)
        return list(parsed[0]), list(parsed[1])

    def _css_rules_to_string(self, rules: list[Any]) -> str:
        # cssutils re-serialising the same @media rules was a third of an inlining's cost.
        key = tuple(map(id, rules))
        text = self._serialised.get(key)
        if text is None:
            text = self._serialised[key] = super()._css_rules_to_string(rules)
        return text


def inline_css(html: str) -> str:
    """premailer: CSS rules into style attributes; @media rules stay in a <style>."""
    return _Premailer(
        html,
        keep_style_tags=False,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        allow_network=False,
    ).transform(pretty_print=False)


def render_edition(
    session: Session,
    settings: Settings,
    edition: Edition,
    languages: Sequence[str],
    *,
    fallback_language: str | None = None,
    placeholders: Mapping[str, str],
    test: bool = False,
) -> RenderedVariant:
    """Render and inline one ordered language set; cut bodies if the HTML grows too big.

    `placeholders` maps 'unsubscribe_url', 'greeting_html' and 'greeting_text' to the
    tokens (or real values, e.g. for a preview) that go where the personal parts are.
    `test` marks a staff test copy: "[TEST]" in the subject and a one-line banner.
    """
    langs = tuple(languages)
    primary = langs[0]
    full = {lang: edition_sections(session, edition, lang, fallback_language) for lang in langs}
    truncated = False
    # Full bodies, then first paragraphs, then titles alone with their "read more" links.
    for paragraphs in (None, 2, 1, 0):
        sections = []
        for lang in langs:
            tr = i18n.translations(lang)
            # A test copy is of an edition that may not be public yet: its "view in browser"
            # and "read more" links open the same "this came from a test email" page.
            link = (
                placeholders["unsubscribe_url"]
                if test
                else archive_url(settings.base_url, lang, edition.week)
            )
            views = full[lang] if paragraphs is None else _cut(full[lang], link, paragraphs)
            sections.append(
                Section(
                    lang=lang,
                    name=i18n.LANGUAGE_NAMES[lang],
                    title=i18n.digest_title(lang),
                    week_range=i18n.format_week_range(edition.week, lang),
                    archive_url=link,
                    articles=views,
                    gettext=tr.gettext,
                    not_translated_note=tr.gettext("Not yet translated into this language."),
                )
            )
        subject = edition_subject(edition, primary)
        context = {
            "subject": subject,
            "primary": sections[0],
            "sections": sections,
            "week": edition.week,
            "postal_address": settings.postal_address,
            "unsubscribe_url": placeholders["unsubscribe_url"],
            "greeting_html": placeholders["greeting_html"],
            "greeting_text": placeholders["greeting_text"],
            "lang": primary,
            "test": test,
        }
        subject, text, raw_html = render_email("edition", primary, context)
        html = inline_css(raw_html)
        if len(html.encode("utf-8")) <= HTML_SIZE_LIMIT:
            break
        truncated = True
    return RenderedVariant(langs, subject, html, text, truncated)
