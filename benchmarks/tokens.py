"""Cost of the tokens made once per recipient in the send loop: the unsubscribe link's and
the Message-ID's (and, with an inbound address, the return path's and the mailto's, which
are made the same way as the Message-ID's).

python -m benchmarks.tokens
"""

from __future__ import annotations

import timeit
from datetime import UTC, datetime

from newsletter.message_ids import message_id_maker, read_message_id
from newsletter.tokens import TokenPurpose, TokenSigner


def main() -> None:
    signer = TokenSigner("k" * 48)
    number = 20_000
    salt = 0x9F3A_51C2_7E04

    def make() -> str:
        return signer.make(TokenPurpose.unsubscribe, 123_456, 42, salt=salt)

    made = min(timeit.repeat(make, number=number, repeat=5))
    token = make()
    read = min(
        timeit.repeat(lambda: signer.read(token, TokenPurpose.unsubscribe), number=number, repeat=5)
    )
    print(f"token make: {made / number * 1e6:.2f} µs   read: {read / number * 1e6:.2f} µs")
    print(f"token length: {len(token)} characters ({token})")

    message_id = message_id_maker(signer, "news.example.org", 42, datetime(2020, 2, 3, tzinfo=UTC))
    made = min(timeit.repeat(lambda: message_id(123_456, salt), number=number, repeat=5))
    sample = message_id(123_456, salt)
    read = min(timeit.repeat(lambda: read_message_id(signer, sample), number=number, repeat=5))
    print(f"Message-ID make: {made / number * 1e6:.2f} µs   read: {read / number * 1e6:.2f} µs")
    print(f"Message-ID: {len(sample)} characters ({sample})")


if __name__ == "__main__":
    main()
