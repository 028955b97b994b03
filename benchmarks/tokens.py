"""Cost of one unsubscribe token, made once per recipient in the send loop.

python -m benchmarks.tokens
"""

from __future__ import annotations

import timeit

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


if __name__ == "__main__":
    main()
