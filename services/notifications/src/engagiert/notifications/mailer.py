"""Sends e-mail over SMTP (aiosmtplib): a small pool of reused connections and a rate limit per server.

Errors are sorted in two kinds: :class:`TransientSmtpError` (the server is away, a 4xx answer,
a dropped connection: try again later) and :class:`PermanentSmtpError` (a 5xx answer, an
unknown recipient: never try again). An answer keeps only the reply code and the enhanced status
code (``550 5.1.1``), never the server's text: that text can hold the recipient's address.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib

from engagiert.shared.logging import get_logger

log = get_logger(__name__)


_ENHANCED_STATUS = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?!\S)")


def smtp_codes(code: int, message: str | None) -> str:
    """Return an SMTP answer's reply code and enhanced status code (``550 5.1.1``), dropping the text."""
    match = _ENHANCED_STATUS.match(message or "")
    return f"{code} {match.group(1)}" if match else str(code)


class SmtpError(Exception):
    """A message was not accepted; ``answer`` holds the codes of the server's answer, or the kind of socket error."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer


class TransientSmtpError(SmtpError):
    """The message may be accepted later: retry with backoff."""


class PermanentSmtpError(SmtpError):
    """The message will never be accepted: fail at once."""


_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def compose(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    headers: dict[str, str],
    reply_to: str | None = None,
    calendar: bytes | None = None,
    calendar_method: str | None = None,
    images: dict[str, bytes] | None = None,
) -> Message:
    """Return the message: plain text and HTML as alternatives (UTF-8, quoted-printable), with its attachments.

    ``multipart/alternative`` alone when there is nothing else; inline images make the HTML part
    ``multipart/related``; a calendar entry makes the whole ``multipart/mixed`` with a
    ``text/calendar; method=...`` attachment (RFC 6047), which mail programs offer to add to the calendar.
    Built with the compat32 classes: building and flattening one costs about a fifth of an
    ``EmailMessage``'s, whose generator deep-copies every part with 8-bit text (any umlaut).
    """
    body: Message = MIMEMultipart("alternative")
    body.attach(_text_part("plain", text))
    html_part = _text_part("html", html)
    if images:
        related = MIMEMultipart("related")
        related.attach(html_part)
        for cid, png in images.items():
            image = MIMEImage(png, "png")
            image["Content-ID"] = f"<{cid}>"
            image.add_header("Content-Disposition", "inline", filename=f"{cid}.png")
            related.attach(image)
        body.attach(related)
    else:
        body.attach(html_part)
    msg = body
    if calendar is not None:
        msg = MIMEMultipart("mixed")
        msg.attach(body)
        msg.attach(_calendar_part(calendar, calendar_method or "REQUEST"))
    name, address = parseaddr(sender)
    msg["From"] = formataddr((name, address), charset="utf-8")
    msg["To"] = to
    if reply_to:
        reply_name, reply_address = parseaddr(reply_to)
        msg["Reply-To"] = formataddr((reply_name, reply_address), charset="utf-8")
    msg["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id
    for key, value in headers.items():
        msg[key] = value
    return msg


def _text_part(subtype: str, body: str) -> Message:
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part.set_payload(body, _UTF8_QP)
    return part


def _calendar_part(content: bytes, method: str) -> Message:
    filename = "absage.ics" if method == "CANCEL" else "termin.ics"
    part = MIMENonMultipart("text", "calendar", charset="utf-8", method=method, name=filename)
    part.set_payload(content.decode("utf-8"), _UTF8_QP)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


class RateLimiter:
    """Lets at most ``rate`` acquisitions per second through (evenly spaced); 0 means no limit."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for the next free slot."""
        if self.rate <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + 1.0 / self.rate
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass(kw_only=True)
class SmtpMailer:
    """Sends messages to one SMTP server; ``host`` and ``port`` may be changed at run time (``configure``)."""

    host: str
    port: int
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    pool_size: int = 4
    rate_per_second: float = 0.0
    _idle: list[aiosmtplib.SMTP] = field(default_factory=list, init=False)
    _slots: asyncio.Semaphore | None = field(default=None, init=False)
    _limiter: RateLimiter | None = field(default=None, init=False)
    _generation: int = field(default=0, init=False)

    def configure(self, *, host: str | None = None, port: int | None = None) -> None:
        """Point the mailer at another server; pooled connections to the old one are dropped."""
        self.host = host or self.host
        self.port = port or self.port
        self._generation += 1
        idle, self._idle = self._idle, []
        for smtp in idle:
            smtp.close()

    async def send(self, message: Message) -> str:
        """Send ``message``; return the codes of the server's answer, or raise a transient or permanent error."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.pool_size)
            self._limiter = RateLimiter(self.rate_per_second)
        assert self._limiter is not None
        await self._limiter.acquire()
        async with self._slots:
            generation = self._generation
            smtp = self._idle.pop() if self._idle else None
            try:
                if smtp is None or not smtp.is_connected:
                    smtp = await self._connect()
                refused, answer = await smtp.send_message(message)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._release(smtp, generation)
                raise _classify_refused(exc) from None
            except aiosmtplib.SMTPResponseException as exc:
                # The server answered: the connection may be reused after a RSET (4xx/5xx on one message).
                await self._reset_or_drop(smtp, generation)
                answer = smtp_codes(exc.code, exc.message)
                if 500 <= exc.code < 600:
                    raise PermanentSmtpError(answer) from None
                raise TransientSmtpError(answer) from None
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if smtp is not None:
                    smtp.close()
                raise TransientSmtpError(type(exc).__name__) from None  # its text may name the server or the recipient
            self._release(smtp, generation)
            if refused:
                codes = sorted({code for code, _ in refused.values()})
                raise PermanentSmtpError(f"recipients refused: {codes}")
            return smtp_codes(250, answer)  # a message is accepted with 250 at the end of DATA

    async def close(self) -> None:
        """Quit every pooled connection."""
        idle, self._idle = self._idle, []
        for smtp in idle:
            try:
                await asyncio.wait_for(smtp.quit(), timeout=2)
            except Exception:
                smtp.close()

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.tls,
            start_tls=self.starttls,
            timeout=self.timeout,
            username=self.username,
            password=self.password,
        )
        await smtp.connect()
        return smtp

    def _release(self, smtp: aiosmtplib.SMTP | None, generation: int) -> None:
        if smtp is None:
            return
        if generation == self._generation and smtp.is_connected and len(self._idle) < self.pool_size:
            self._idle.append(smtp)
        else:
            smtp.close()

    async def _reset_or_drop(self, smtp: aiosmtplib.SMTP | None, generation: int) -> None:
        if smtp is None:
            return
        try:
            await smtp.rset()
        except Exception:
            smtp.close()
            return
        self._release(smtp, generation)


def _classify_refused(exc: aiosmtplib.SMTPRecipientsRefused) -> SmtpError:
    codes = [r.code for r in exc.recipients]
    answer = "; ".join(smtp_codes(r.code, r.message) for r in exc.recipients)[:300]
    if codes and all(400 <= c < 500 for c in codes):
        return TransientSmtpError(answer)
    return PermanentSmtpError(answer)
