"""The inbound mail adapters over bounce_policy: where bounces, complaints and mailed
unsubscribes come in.

    intake.py   store raw, then process: the one path both adapters take
    server.py   `newsletter inbound --listen`: an SMTP or LMTP server (aiosmtpd) for the
                inbound address and its +token forms only (550 for the rest: never a relay)
    imap.py     `newsletter inbound --imap`: the same mail read from a mailbox
"""
