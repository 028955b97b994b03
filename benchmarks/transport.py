"""The SMTP client alone: `python -m benchmarks.transport --messages 20000`.

Prepared, dot-stuffed messages of one size pushed by newsletter.transport.SmtpTransport over
one reused connection into smtp-sink, with this process's CPU per message, beside
smtplib.sendmail and smtp-source for the same count and size.
"""

from __future__ import annotations

import argparse
import smtplib
import time

from benchmarks.services import SmtpSink, ensure_postfix, smtp_source_ceiling
from newsletter.transport import SmtpTransport

SENDER = "digest@news.example.org"


def sample_message(size: int, index: int) -> bytes:
    """A CRLF message of about `size` bytes with a few lines that need dot-stuffing."""
    head = (
        f"From: <{SENDER}>\r\nTo: <reader{index}@bench.example>\r\nSubject: bench\r\n"
        f"Message-ID: <{index}@news.example.org>\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    body = (line * (size // len(line) + 1))[:size]
    return head + body.rsplit(b"\r\n", 1)[0] + b"\r\n.dot line\r\n"


def measure(name: str, sink: SmtpSink, count: int, send: object) -> tuple[str, float, float]:
    sink.mark()
    cpu, wall = time.process_time(), time.perf_counter()
    send()  # type: ignore[operator]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert sink.received() == count or time.sleep(0.5) or sink.received() == count
    return name, count / wall, 1e6 * cpu / count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transport")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=50, help="messages per send() call")
    args = parser.parse_args(argv)
    ensure_postfix()
    n = args.messages
    stuffed = [sample_message(args.size, i).replace(b"\r\n.", b"\r\n..") for i in range(64)]
    plain = [sample_message(args.size, i) for i in range(64)]
    rows = []
    with SmtpSink() as sink:

        def ours() -> None:
            with SmtpTransport(sink.url) as transport:
                for start in range(0, n, args.batch):
                    batch = [
                        (f"reader{i}@bench.example", stuffed[i % 64])
                        for i in range(start, min(n, start + args.batch))
                    ]
                    results = transport.send(SENDER, batch)
                    assert all(r.outcome == "ok" for r in results), results[:3]

        def stdlib() -> None:
            with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
                for i in range(n):
                    smtp.sendmail(SENDER, [f"reader{i}@bench.example"], plain[i % 64])

        rows.append(measure("newsletter SmtpTransport (1 connection)", sink, n, ours))
        rows.append(measure("smtplib.sendmail (1 connection)", sink, n, stdlib))
        for sessions in (1, 4):
            rate, _ = smtp_source_ceiling(sink, n, args.size, sessions=sessions)
            rows.append((f"smtp-source -d -s {sessions}", rate, float("nan")))
    print(f"| client | messages/s | client CPU / message (µs) |  ({n} × {args.size} bytes)")
    print("|---|---|---|")
    for name, rate, cpu in rows:
        print(f"| {name} | {rate:,.0f} | {'–' if cpu != cpu else f'{cpu:.0f}'} |")


if __name__ == "__main__":
    main()
