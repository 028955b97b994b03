"""A private Dovecot IMAP server (Debian's dovecot-imapd) in a temp folder, on a free port,
with implicit TLS (a self-signed certificate) and one mailbox user."""

from __future__ import annotations

import imaplib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "s3cret pass/@%"  # URL-quoted in url()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Dovecot:
    """start() it, use url(), stop() it; its files live in a folder of their own under /tmp
    (Dovecot's unprivileged processes must traverse it: pytest's tmp_path is private)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nl-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> Path:
        root = self.root
        (root / "run").mkdir(parents=True)
        (root / "home").mkdir()
        # Mail is stored as an unprivileged user (Dovecot refuses root for mail).
        mail_uid = os.getuid() if os.getuid() != 0 else 65534
        mail_gid = os.getgid() if os.getuid() != 0 else 65534
        os.chown(root / "home", mail_uid, mail_gid)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=localhost",
                "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        login_user = "dovenull" if os.getuid() == 0 else os.environ.get("USER", "nobody")
        internal_user = "dovecot" if os.getuid() == 0 else login_user
        config = root / "dovecot.conf"
        config.write_text(
            f"""
base_dir = {root}/run
state_dir = {root}/run
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/home
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
namespace inbox {{
  inbox = yes
  mailbox Processed {{
    auto = create
  }}
}}
"""
        )
        return config

    def start(self) -> None:
        config = self._write_config()
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot stopped: {self.log()}")
            try:
                self.client().logout()
                return
            except (OSError, imaplib.IMAP4.error):
                time.sleep(0.2)
        raise RuntimeError(f"dovecot did not start: {self.log()}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text()[-3000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, folder: str = "INBOX", query: str = "verify=0") -> str:
        from urllib.parse import quote

        return f"imaps://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{self.port}/{folder}?{query}"

    def client(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.root / "cert.pem"))
        context.check_hostname = False
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=10)
        imap.login(USER, PASSWORD)
        return imap

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        imap = self.client()
        try:
            typ, data = imap.append(folder, "", None, raw)
            assert typ == "OK", data
        finally:
            imap.logout()

    def count(self, folder: str = "INBOX") -> int:
        imap = self.client()
        try:
            typ, data = imap.select(folder)
            assert typ == "OK", data
            return int(data[0])
        finally:
            imap.logout()


def clear(dovecot: Dovecot, *folders: str) -> None:
    """Empty these folders (tests share one server)."""
    imap = dovecot.client()
    try:
        for folder in folders:
            _typ, data = imap.select(folder)
            if int(data[0]):
                imap.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                imap.expunge()
    finally:
        imap.logout()
