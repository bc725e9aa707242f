"""The previews of an issue's email: outbox/D/preview.<variant>.html and .eml, written by
`digest build` for the curator to look at before approving. A preview .eml is the message a
subscriber of that variant gets, built by the same MessageBuilder as the send, addressed to
a placeholder and with an unsubscribe link that does nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

from pipeline.core import layout
from pipeline.core.calendar import issue_published_at
from pipeline.core.config import Settings
from pipeline.core.files import write_if_changed
from pipeline.core.models import UNSUBSCRIBE_PLACEHOLDER, EmailVariant
from pipeline.deliver.mail import PREVIEW_TOKEN, MessageBuilder, unsubscribe_mailto, unsubscribe_url

PREVIEW_RECIPIENT = "preview@example.invalid"


def preview_unsubscribe_url(settings: Settings) -> str:
    """What the unsubscribe placeholder becomes in a preview (a link that does nothing)."""
    return unsubscribe_url(settings, PREVIEW_TOKEN)


def preview_message(settings: Settings, day: date, variant: EmailVariant) -> bytes:
    """The whole message a subscriber of this variant gets, addressed to a placeholder
    recipient and dated at the issue's midnight so rebuilds are byte-identical."""
    builder = MessageBuilder(settings, day, [variant])
    builder.dkim = None  # a DKIM signature is dated: previews stay byte-identical on rebuild
    when = issue_published_at(day, settings.tzinfo)
    mailto = unsubscribe_mailto(settings, PREVIEW_TOKEN)
    url = preview_unsubscribe_url(settings)
    return builder.build(variant.variant, PREVIEW_RECIPIENT, url, mailto, when).data


def write_previews(settings: Settings, day: date, variants: Sequence[EmailVariant]) -> list[Path]:
    """outbox/D/preview.<variant>.html and .eml; returns every preview path."""
    folder = layout.outbox_day(settings, day)
    for stale in folder.glob(".preview.*.tmp"):  # a build killed mid-write left it
        stale.unlink(missing_ok=True)
    paths = []
    for v in variants:
        html_path = layout.preview_html(settings, day, v.variant)
        eml_path = layout.preview_eml(settings, day, v.variant)
        write_if_changed(
            html_path, v.html.replace(UNSUBSCRIBE_PLACEHOLDER, preview_unsubscribe_url(settings))
        )
        write_if_changed(eml_path, preview_message(settings, day, v))
        paths += [html_path, eml_path]
    return paths
