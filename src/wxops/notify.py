"""Tell people what happened: release notes and monitoring incidents to chat and e-mail.

A promotion (with its release note), a rejection by the gate, a rollback and a new
monitoring incident each become a :class:`Notice`, sent to every channel of
``notify.channels`` that lists the event: a chat webhook (Slack, Mattermost and
Rocket.Chat take Slack's ``{"text": ...}`` JSON; Microsoft Teams an Adaptive Card
through a Workflows webhook) or e-mail over SMTP.

Secrets (webhook URLs carry a token; SMTP passwords) come from an environment variable
or a file readable by its owner only, are checked before the release action changes
anything (:func:`check_channels`), are added to the redaction list, and never appear in
a message, a warning or a log. Delivery happens after the action: a chat server that is
down must not undo a promotion, so a failed delivery is a warning naming the channel
(not its URL), and the action's result says which channels were missed.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from wxops.config import EmailChannel, NotifyConfig, NotifyEvent, WebhookChannel
from wxops.errors import NotifyError

log = logging.getLogger("wxops.notify")

_ATTEMPTS = 3


@dataclass(frozen=True)
class Notice:
    """One event worth telling: a short title and a markdown body."""

    event: NotifyEvent
    title: str
    body: str
    facts: dict[str, str] = field(default_factory=dict)
    """Short key/value lines (model, version, reason...), shown above the body."""

    def text(self) -> str:
        """The plain-text form (e-mail body, chat fallback)."""
        lines = [f"{k}: {v}" for k, v in self.facts.items()]
        return "\n".join([*lines, "", self.body]).strip() + "\n"


def read_secret(env: str | None, file: Path | None, what: str) -> str:
    """A secret from an environment variable or an owner-only file.

    Raises:
        NotifyError: unset variable, missing file, a file others can read, or empty.
    """
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise NotifyError(f"{what}: environment variable {env} is not set; export it (or use a 0600 file)")
        return value
    assert file is not None
    try:
        mode = file.stat().st_mode
    except FileNotFoundError as exc:
        raise NotifyError(f"{what}: secret file {file} not found") from exc
    if mode & 0o077:
        raise NotifyError(f"{what}: secret file {file} is readable by others (mode {mode & 0o777:o}); "
                          f"run `chmod 600 {file}`")
    value = file.read_text(encoding="utf-8").strip()
    if not value:
        raise NotifyError(f"{what}: secret file {file} is empty")
    return value


def _channel_name(channel: WebhookChannel | EmailChannel) -> str:
    return channel.name or channel.type


def _secret(channel: WebhookChannel | EmailChannel) -> str | None:
    name = f"notify channel '{_channel_name(channel)}'"
    if isinstance(channel, WebhookChannel):
        return read_secret(channel.url_env, channel.url_file, name)
    if channel.username is None:
        return None
    return read_secret(channel.password_env, channel.password_file, name)


def check_channels(cfg: NotifyConfig) -> None:
    """Resolve every channel's secret now, so a misconfiguration stops an action before
    it changes anything; the secrets join the redaction list."""
    from wxops import redact

    found = [s for ch in cfg.channels if (s := _secret(ch)) is not None]
    if found:
        redact.configure([*redact.secret_values(), *found])


def send(cfg: NotifyConfig, notice: Notice) -> list[str]:
    """Deliver ``notice`` to each channel that wants its event.

    Returns:
        Names of the channels it could not reach (each also logged as a warning).
    """
    from wxops import redact

    missed: list[str] = []
    for channel in cfg.channels:
        if notice.event not in channel.events:
            continue
        name = _channel_name(channel)
        try:
            secret = _secret(channel)
            if isinstance(channel, WebhookChannel):
                assert secret is not None
                _post_webhook(channel, secret, notice)
            else:
                _send_email(channel, secret, notice)
        except (NotifyError, OSError, smtplib.SMTPException, urllib.error.URLError) as exc:
            log.warning("notify channel '%s' (%s) missed the %s notice: %s", name, channel.type,
                        notice.event, redact.redact_text(f"{type(exc).__name__}: {exc}"))
            missed.append(name)
    return missed


def webhook_payload(fmt: str, notice: Notice) -> dict[str, object]:
    """The JSON a chat server of format ``fmt`` expects."""
    facts = "\n".join(f"{k}: {v}" for k, v in notice.facts.items())
    if fmt == "teams":
        body: list[dict[str, object]] = [
            {"type": "TextBlock", "text": notice.title, "weight": "Bolder", "size": "Medium", "wrap": True}]
        if notice.facts:
            body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in notice.facts.items()]})
        body.append({"type": "TextBlock", "text": notice.body, "wrap": True})
        return {"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
            "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard", "version": "1.4", "body": body}}]}
    title = f"#### {notice.title}" if fmt == "mattermost" else f"*{notice.title}*"
    return {"text": "\n".join(p for p in (title, facts, notice.body) if p), "username": "wxops"}


def _post_webhook(channel: WebhookChannel, url: str, notice: Notice) -> None:
    data = json.dumps(webhook_payload(channel.format, notice)).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "wxops"})
    for attempt in range(_ATTEMPTS):
        try:
            with urllib.request.urlopen(request, timeout=channel.timeout_s) as resp:
                resp.read()
            return
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code not in (408, 429):
                raise NotifyError(f"the webhook refused the message (HTTP {exc.code} {exc.reason})") from None
            error: Exception = NotifyError(f"the webhook answered HTTP {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            error = NotifyError(f"cannot reach the webhook ({type(reason).__name__}: {reason})")
        if attempt + 1 < _ATTEMPTS:
            time.sleep(0.5 * 2**attempt)
    raise error


def _send_email(channel: EmailChannel, password: str | None, notice: Notice) -> None:
    message = EmailMessage()
    message["Subject"] = f"[wxops] {notice.title}"
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.to)
    message["X-Wxops-Event"] = notice.event
    message.set_content(notice.text())
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if channel.security == "ssl":
        smtp = smtplib.SMTP_SSL(channel.host, channel.port, timeout=channel.timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_s)
    with smtp:
        if channel.security == "starttls":
            smtp.starttls(context=context)
        if channel.username is not None and password is not None:
            try:
                smtp.login(channel.username, password)
            except smtplib.SMTPAuthenticationError as exc:
                raise NotifyError(f"the SMTP server refused the login of {channel.username} "
                                  f"({exc.smtp_code})") from None
        smtp.send_message(message)
