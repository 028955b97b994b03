"""Cost of one recipient's message from a prepared variant, next to a full render + inline.

python -m benchmarks.render [--langs be,ru,en] [--number 20000]

Both are measured in the same run on the sample week (an in-memory SQLite database):
- per recipient: MessageTemplate.render() and .render_smtp() (bytes join + escaped values);
- per variant: Jinja2 + premailer (render_edition) and the whole prepare (MIME + split),
  which is what building every message from scratch would cost per recipient.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from dataclasses import replace

from newsletter import migrate
from newsletter.config import Settings
from newsletter.db import make_engine, make_session_factory
from newsletter.editions import import_edition_file
from newsletter.languages import parse_languages
from newsletter.messages import Recipient, prepare_variant
from newsletter.paths import sample_data_dir
from newsletter.rendering import render_edition

PLACEHOLDERS = {"unsubscribe_url": "@@U@@", "greeting_html": "@@G@@", "greeting_text": "@@T@@"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--langs", default="be,ru,en", help="the language set (default be,ru,en)")
    parser.add_argument("--number", type=int, default=20_000, help="renders per timing")
    parser.add_argument("--full", type=int, default=20, help="full renders per timing")
    args = parser.parse_args()
    langs = parse_languages(args.langs)

    engine = make_engine("sqlite://")
    migrate.upgrade(engine)
    session = make_session_factory(engine)()
    edition = import_edition_file(session, sample_data_dir() / "2020-W05.yaml")
    settings = replace(
        Settings(),
        secret_key="benchmark",
        base_url="https://news.example.org",
        from_address="Situation in Belarus <digest@news.example.org>",
    )
    template = prepare_variant(session, settings, edition, langs)  # warm caches
    recipients = [
        Recipient(
            email=f"reader{n}@example.org",
            name=("Алесь Каліноўскі" if n % 2 else "Alice Liddell"),
            unsubscribe_url=f"https://news.example.org/unsubscribe/Tok{n:08d}abcdefghijklmnopqrstu",
            message_id=f"<{n}.2020-W05@news.example.org>",
        )
        for n in range(2)
    ]
    size = len(template.render(recipients[0]))

    def per_call(func, number: int) -> float:  # type: ignore[no-untyped-def]
        return min(timeit.repeat(func, number=number, repeat=5)) / number

    n = args.number
    render_us = [per_call(lambda r=r: template.render(r), n) * 1e6 for r in recipients]
    smtp_us = [per_call(lambda r=r: template.render_smtp(r), n) * 1e6 for r in recipients]
    inline_ms = (
        per_call(
            lambda: render_edition(session, settings, edition, langs, placeholders=PLACEHOLDERS),
            args.full,
        )
        * 1e3
    )
    prepare_ms = (
        per_call(lambda: prepare_variant(session, settings, edition, langs), args.full) * 1e3
    )
    one_us = statistics.mean(render_us)
    print(f"variant {','.join(langs)}: message {size:,} bytes")
    print(
        f"per recipient, from the prepared variant: render {one_us:.1f} µs "
        f"(ASCII name {render_us[0]:.1f}, Cyrillic name {render_us[1]:.1f}); "
        f"render_smtp {statistics.mean(smtp_us):.1f} µs"
    )
    print(f"full render + premailer inline: {inline_ms:.1f} ms")
    print(f"whole prepare of a variant (render + inline + MIME + split): {prepare_ms:.1f} ms")
    print(
        f"ratio: one prepared copy is {inline_ms * 1e3 / one_us:,.0f}x cheaper than render + "
        f"inline, {prepare_ms * 1e3 / one_us:,.0f}x cheaper than building it from scratch"
    )


if __name__ == "__main__":
    main()
