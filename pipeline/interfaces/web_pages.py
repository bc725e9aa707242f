"""The pages of `digest serve` (templates/web/*.html) and their words, in Korean and English:
the subscribe form, the confirm and unsubscribe pages, the one-line answers and errors, and
the confirmation mail's text."""

from __future__ import annotations

from typing import Any

from flask import Response

from pipeline.core.config import Settings

# The words of these pages; the archive's words (render.UI) are reused for the rest.
WEB_UI: dict[str, dict[str, str]] = {
    "ko": {
        "subscribe": "구독하기",
        "subscribe_intro": "{title} 뉴스레터를 메일로 받아 보세요.",
        "email_label": "메일 주소",
        "language_label": "받을 언어",
        "subscribe_button": "구독 신청",
        "subscribe_note": "확인 메일의 링크를 열어야 구독이 시작됩니다. "
                          "주소는 뉴스레터를 보내는 데에만 씁니다.",
        "check_title": "메일함을 확인해 주세요",
        "check_text": "{email} 주소가 아직 구독 중이 아니라면 확인 링크를 보냈습니다. 링크를 열어 "
                      "구독을 마쳐 주세요. 메일이 보이지 않으면 스팸함을 확인하거나 한 시간 뒤에 다시 "
                      "신청해 주세요.",
        "bad_email": "올바른 메일 주소가 아닙니다. 다시 확인해 주세요.",
        "bad_email_utf8": "이 뉴스레터는 @ 앞부분에 영문 외 문자가 들어간 주소로는 보낼 수 없습니다.",
        "bad_language": "받을 언어를 목록에서 골라 주세요.",
        "too_many_title": "잠시 후 다시 시도해 주세요",
        "too_many_text": "요청이 너무 많습니다. 1분 뒤에 다시 시도해 주세요.",
        "confirm_title": "구독 확인",
        "confirm_question": "{email} 주소로 {title} 뉴스레터를 받으시겠어요?",
        "confirm_button": "구독 확인",
        "confirmed_title": "구독되었습니다",
        "confirmed_text": "{email} 주소로 {title} 뉴스레터를 보내 드립니다.",
        "expired_title": "만료된 링크",
        "expired_text": "이 링크는 만료되었습니다. 구독을 다시 신청해 주세요.",
        "subscribe_again": "다시 구독 신청하기",
        "invalid_title": "잘못된 링크",
        "invalid_text": "링크가 올바르지 않거나 중간에 바뀌었습니다.",
        "unsubscribe_title": "수신 거부",
        "unsubscribe_question": "{email} 주소로 {title} 뉴스레터를 그만 보낼까요?",
        "unsubscribe_button": "수신 거부",
        "unsubscribed_title": "수신 거부되었습니다",
        "unsubscribed_text": "{email} 주소로 이 뉴스레터를 더는 보내지 않습니다.",
        "not_found_title": "찾을 수 없습니다",
        "not_found_text": "이 주소에는 아무것도 없습니다.",
        "error_title": "요청을 처리할 수 없습니다",
        "too_large_text": "보낸 내용이 너무 큽니다.",
        "too_long_text": "주소가 너무 깁니다.",
        "bad_request_text": "요청을 이해하지 못했습니다.",
        "unavailable_title": "잠시 쓸 수 없습니다",
        "unavailable_text": "잠시 후 다시 시도해 주세요.",
        "mail_subject": "{title} 구독 확인",
        "mail_text": "{email} 주소로 {title} 뉴스레터를 받으려면 아래 링크를 열어 확인해 "
                     "주세요. 링크는 {days}일 동안 쓸 수 있습니다.\n\n{link}\n\n"
                     "신청하지 않으셨다면 이 메일을 무시해 주세요. 아무것도 보내지 않습니다.\n",
    },
    "en": {
        "subscribe": "Subscribe",
        "subscribe_intro": "Get {title} by email.",
        "email_label": "Email address",
        "language_label": "Language",
        "subscribe_button": "Subscribe",
        "subscribe_note": "We email you a link; your subscription starts when you open it. "
                          "Your address is used for this newsletter only.",
        "check_title": "Check your inbox",
        "check_text": "Unless {email} is already subscribed, a confirmation link is on its way. "
                      "Open it to start your subscription. Nothing there? Check your spam "
                      "folder, or try again in an hour.",
        "bad_email": "That is not a valid email address. Please check it.",
        "bad_email_utf8": "This newsletter cannot send to addresses with non-ASCII characters "
                          "before the @.",
        "bad_language": "Please choose a language from the list.",
        "too_many_title": "Please try again later",
        "too_many_text": "Too many requests. Please wait a minute and try again.",
        "confirm_title": "Confirm your subscription",
        "confirm_question": "Start sending {title} to {email}?",
        "confirm_button": "Confirm",
        "confirmed_title": "You are subscribed",
        "confirmed_text": "{email} will get {title}.",
        "expired_title": "Link expired",
        "expired_text": "This link has expired. Please subscribe again.",
        "subscribe_again": "Subscribe again",
        "invalid_title": "Invalid link",
        "invalid_text": "This link is not valid or was altered.",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_question": "Stop sending {title} to {email}?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_title": "Unsubscribed",
        "unsubscribed_text": "{email} will get no more emails from this list.",
        "not_found_title": "Not found",
        "not_found_text": "There is nothing at this address.",
        "error_title": "Cannot handle this request",
        "too_large_text": "What was sent is too large.",
        "too_long_text": "This address is too long.",
        "bad_request_text": "This request could not be understood.",
        "unavailable_title": "Temporarily unavailable",
        "unavailable_text": "Please try again in a few minutes.",
        "mail_subject": "Confirm your subscription to {title}",
        "mail_text": "Please confirm that you want to receive {title} at {email}; the link "
                     "works for {days} days:\n\n{link}\n\n"
                     "If you did not ask for it, ignore this email; nothing will be sent to you.\n",
    },
}


def ui_language(settings: Settings) -> str:
    """The pages' default language: the newsletter's locale when the pages speak it, else
    English."""
    lang = settings.locale_language
    return lang if lang in WEB_UI else "en"


class Pages:
    """Renders the pages of `digest serve` from templates/web/*.html in the reader's language
    (the subscriber's, the one asked for with ?lang=, else the newsletter's) and the
    archive's style (a newsletter's own templates override them)."""

    def __init__(self, settings: Settings) -> None:
        from pipeline.publish import render  # the renderer's environment, words and labels

        self.settings = settings
        self.lang = ui_language(settings)
        self.renderer = render.Renderer(settings)
        self.env = self.renderer.env
        self.newsletter = render.clean_text(settings.newsletter.title)
        self.languages = [(v, render.LANG_LABELS.get(v, v)) for v in settings.variants]
        self.uis = {lang: {**render.UI.get(lang, render.UI["en"]), **WEB_UI[lang]}
                    for lang in WEB_UI}
        self.ui = self.uis[self.lang]

    def language(self, asked: str | None) -> str:
        """The pages' language for a variant or language name (a reader's `language`,
        ?lang=): its own when the pages speak it, else the newsletter's."""
        return asked if asked in WEB_UI else self.lang

    def variant(self, lang: str) -> str:
        """The archive variant whose pages a page in `lang` links to."""
        return lang if lang in self.settings.variants else self.renderer.default_variant

    def common(self, lang: str) -> dict[str, Any]:
        """What every page in `lang` gets: its words and its language's archive and feed."""
        r, variant = self.renderer, self.variant(lang)
        feed = r.base + r.feed_name(variant)
        # What the archive's page template (_page.html) asks: no canonical URL, one feed.
        return {
            "lang": lang, "ui": self.uis[lang], "newsletter": self.newsletter,
            "archive_url": r.base + r.index_name(variant, None), "feed_url": feed,
            "subscribe_url": r.subscribe_url(variant), "canonical": None,
            "feeds": [{"title": r.feed_title(variant), "url": feed}],
        }

    def render(self, name: str, status: int = 200, lang: str | None = None,
               **context: Any) -> Response:
        """One page as an HTML response that no cache keeps."""
        lang = self.language(lang)
        html = self.env.get_template(f"web/{name}.html").render(**self.common(lang), **context)
        return Response(html, status, {"Cache-Control": "no-store",
                                       "Content-Language": lang},
                        content_type="text/html; charset=utf-8")

    def message(self, title_key: str, text_key: str, status: int = 200, again: bool = False,
                lang: str | None = None, **values: str) -> Response:
        """A page that says one thing (a result or an error) in `lang`."""
        lang = self.language(lang)
        return self.render("message", status, lang, heading=self.uis[lang][title_key],
                           message=self.text(text_key, lang, **values), again=again)

    def text(self, key: str, lang: str | None = None, **values: str) -> str:
        """One of the pages' sentences in `lang`, filled in."""
        return self.uis[self.language(lang)][key].format(title=self.newsletter, **values)
