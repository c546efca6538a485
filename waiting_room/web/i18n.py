"""User-visible strings of every page, in English and Korean.

Pure data and two pure functions: no I/O, no framework. The pages pick a
language with :func:`pick_language` (``?lang=`` or the ``wr_lang`` cookie
first, then ``Accept-Language``) and render with :func:`strings_for`; the
waiting-room script receives :func:`js_strings` as a JSON block, so no
user-visible text is written in JavaScript.

Strings with numbers carry ``{name}`` placeholders that the caller fills
(the script with its own tiny formatter, Python with ``str.format_map``).
Keys starting with ``js_`` are the ones the script needs.
"""

from __future__ import annotations

import re
from typing import Final

LANGUAGES: Final = ("en", "ko")
DEFAULT_LANGUAGE: Final = "en"
#: name of the cookie that remembers a language chosen with ``?lang=``
LANG_COOKIE: Final = "wr_lang"

JS_PREFIX: Final = "js_"
PLACEHOLDER: Final = re.compile(r"\{([a-z_]+)\}")

_EN: dict[str, str] = {
    # shared layout
    "site_name": "Waiting room",
    "skip_to_content": "Skip to content",
    "language": "Language",
    "footer": "A fair, first-come, first-served waiting room.",
    # index
    "index_title": "Open events",
    "index_intro": "Choose an event to join its line.",
    "index_empty": "No events are open right now. Please check back later.",
    "index_join": "Join the line",
    "status_open": "Open",
    "status_paused": "Paused",
    "status_sold_out": "Sold out",
    "status_closed": "Closed",
    # error page
    "error_title": "Something went wrong",
    "error_message": "The page could not be shown. Please try again in a moment.",
    "error_code": "Error {code}",
    "error_title_404": "Page not found",
    "error_message_404": "There is no such page or event. Please check the address.",
    "error_title_503": "Briefly unavailable",
    "error_message_503": "The waiting room is briefly unavailable. Please try again in a moment.",
    "error_home": "Go to the list of events",
    # waiting page, rendered by the server
    "waiting_keep_open": "Keep this page open. When it is your turn, you will be taken to the next step.",
    "waiting_noscript": ("This page needs JavaScript to hold your place in line. Please turn it on and reload."),
    "waiting_status_sold_out": "Sold out. Thank you for waiting.",
    "waiting_status_closed": "This event is closed. Nobody else will be let in.",
    "waiting_position_label": "Your place in line",
    "waiting_eta_label": "Estimated wait",
    "waiting_waiting_label": "People waiting",
    "waiting_progress_label": "Progress to the front of the line",
    "waiting_notice_label": "Announcements",
    "waiting_logo_alt": "{title} logo",
    # waiting page, used by the script
    "js_joining": "Getting your place in line…",
    "js_proof_working": "Checking your browser before it joins the line… {percent}%",
    "js_position": "You are number {position} in line",
    "js_position_front": "You are at the front of the line",
    "js_eta_less_minute": "less than a minute",
    "js_eta_one_minute": "about 1 minute",
    "js_eta_minutes": "about {minutes} minutes",
    "js_eta_one_hour": "about 1 hour",
    "js_eta_hours": "about {hours} hours",
    "js_eta_paused": "paused",
    "js_eta_calculating": "calculating…",
    "js_announce": "You are number {position} in line. Estimated wait: {eta}.",
    "js_conn_connecting": "Connecting…",
    "js_conn_live": "Live",
    "js_conn_polling": "Updating every few seconds",
    "js_conn_reconnecting": "Reconnecting… retry in {seconds} s",
    "js_retry_now": "Retry now",
    "js_pre_queue": "The line opens in {countdown}",
    "js_pre_queue_note": (
        "You are in the early line. When it opens, everyone here gets a random place,"
        " ahead of anyone who arrives later."
    ),
    "js_opening": "The line is opening…",
    "js_paused": "Letting people in is paused for now. You keep your place.",
    "js_sold_out": "Sold out. Thank you for waiting.",
    "js_closed": "This event is closed. Nobody else will be let in.",
    "js_removed": "Your place in line was released because this page was away too long or the event closed.",
    "js_expired": "Your turn came, but the time to continue ran out.",
    "js_redeemed": "You have already used this turn.",
    "js_unknown_event": "This event does not exist. Please check the address.",
    "js_lost_ticket": "Your place in line could not be found.",
    "js_other_tab": "Your place in line is open in another tab or window.",
    "js_take_over": "Use this tab instead",
    "js_origin_error": "This page is not allowed to connect to the waiting room from this address.",
    "js_rate_limited": "Too many requests. Trying again in {seconds} s.",
    "js_unavailable": "The waiting room is very busy. Trying again in {seconds} s.",
    "js_network_error": "Cannot reach the waiting room. Trying again in {seconds} s.",
    "js_your_turn": "It's your turn!",
    "js_turn_expires": "Your turn is held for {countdown}.",
    "js_redirecting": "Taking you to the next step…",
    "js_continue": "Continue now",
    "js_rejoin": "Join the line again",
    # order page (the demo protected target)
    "order_title": "Complete your order",
    "order_intro": "You made it through the line. Your spot is reserved while you finish.",
    "order_item": "Item",
    "order_quantity": "Quantity",
    "order_complete": "Complete order",
    "order_session_ends": "Your reservation ends in {countdown}.",
    "order_session_limited": "Your reservation lasts a limited time.",
    "order_session_over": "Your reservation has ended.",
    "order_done_title": "Thank you!",
    "order_done_text": "Your order is complete. Your spot has been handed to the next person in line.",
    "order_used_title": "This turn was already used",
    "order_used_text": "Each turn can be used only once. To order again, join the line again.",
    "order_expired_title": "Your turn has expired",
    "order_expired_text": "The time to continue ran out before you got here. Please join the line again.",
    "order_invalid_title": "This link is not valid",
    "order_invalid_text": "We could not check your place in line. Please go back to the waiting room.",
    "order_back": "Back to the waiting room",
}

_KO: dict[str, str] = {
    # shared layout
    "site_name": "대기실",
    "skip_to_content": "본문으로 건너뛰기",
    "language": "언어",
    "footer": "먼저 온 순서대로 공정하게 입장하는 대기실입니다.",
    # index
    "index_title": "진행 중인 이벤트",
    "index_intro": "참여할 이벤트를 선택해 대기열에 들어가세요.",
    "index_empty": "지금 진행 중인 이벤트가 없습니다. 나중에 다시 확인해 주세요.",
    "index_join": "대기열 들어가기",
    "status_open": "진행 중",
    "status_paused": "일시 중지",
    "status_sold_out": "매진",
    "status_closed": "종료",
    # error page
    "error_title": "문제가 발생했습니다",
    "error_message": "페이지를 표시할 수 없습니다. 잠시 후 다시 시도해 주세요.",
    "error_code": "오류 {code}",
    "error_title_404": "페이지를 찾을 수 없습니다",
    "error_message_404": "해당 페이지나 이벤트가 없습니다. 주소를 확인해 주세요.",
    "error_title_503": "잠시 이용할 수 없습니다",
    "error_message_503": "대기실을 잠시 이용할 수 없습니다. 잠시 후 다시 시도해 주세요.",
    "error_home": "이벤트 목록으로 가기",
    # waiting page, rendered by the server
    "waiting_keep_open": "이 페이지를 열어 두세요. 차례가 되면 다음 단계로 자동 이동합니다.",
    "waiting_noscript": ("대기 순서를 유지하려면 JavaScript가 필요합니다. JavaScript를 켠 뒤 새로고침해 주세요."),
    "waiting_status_sold_out": "매진되었습니다. 기다려 주셔서 감사합니다.",
    "waiting_status_closed": "이 이벤트는 종료되었습니다. 더 이상 입장할 수 없습니다.",
    "waiting_position_label": "나의 대기 순번",
    "waiting_eta_label": "예상 대기 시간",
    "waiting_waiting_label": "대기 인원",
    "waiting_progress_label": "대기열 진행 상황",
    "waiting_notice_label": "공지",
    "waiting_logo_alt": "{title} 로고",
    # waiting page, used by the script
    "js_joining": "대기 순번을 확인하는 중입니다…",
    "js_proof_working": "줄에 서기 전에 브라우저를 확인하는 중입니다… {percent}%",
    "js_position": "대기 순번 {position}번",
    "js_position_front": "곧 입장할 차례입니다",
    "js_eta_less_minute": "1분 미만",
    "js_eta_one_minute": "약 1분",
    "js_eta_minutes": "약 {minutes}분",
    "js_eta_one_hour": "약 1시간",
    "js_eta_hours": "약 {hours}시간",
    "js_eta_paused": "일시 중지됨",
    "js_eta_calculating": "계산 중…",
    "js_announce": "대기 순번은 {position}번입니다. 예상 대기 시간은 {eta}입니다.",
    "js_conn_connecting": "연결 중…",
    "js_conn_live": "실시간 연결됨",
    "js_conn_polling": "몇 초마다 새로 고치는 중",
    "js_conn_reconnecting": "다시 연결하는 중… {seconds}초 후 재시도",
    "js_retry_now": "지금 다시 시도",
    "js_pre_queue": "대기열이 {countdown} 후에 열립니다",
    "js_pre_queue_note": (
        "사전 대기 중입니다. 대기열이 열리면 사전 대기자 모두에게 무작위 순번이 주어지며, 이후에 온 분들보다 앞섭니다."
    ),
    "js_opening": "대기열이 열리고 있습니다…",
    "js_paused": "입장이 잠시 중지되었습니다. 대기 순서는 그대로 유지됩니다.",
    "js_sold_out": "매진되었습니다. 기다려 주셔서 감사합니다.",
    "js_closed": "이 이벤트는 종료되었습니다. 더 이상 입장할 수 없습니다.",
    "js_removed": "페이지를 너무 오래 비웠거나 이벤트가 종료되어 대기 순서가 취소되었습니다.",
    "js_expired": "차례가 되었지만 입장 가능 시간이 지났습니다.",
    "js_redeemed": "이미 사용한 입장 차례입니다.",
    "js_unknown_event": "존재하지 않는 이벤트입니다. 주소를 확인해 주세요.",
    "js_lost_ticket": "대기 순서를 찾을 수 없습니다.",
    "js_other_tab": "다른 탭이나 창에서 이 대기 순서가 열려 있습니다.",
    "js_take_over": "이 탭에서 계속하기",
    "js_origin_error": "이 주소에서는 대기실에 연결할 수 없습니다.",
    "js_rate_limited": "요청이 너무 많습니다. {seconds}초 후 다시 시도합니다.",
    "js_unavailable": "대기실이 매우 혼잡합니다. {seconds}초 후 다시 시도합니다.",
    "js_network_error": "대기실에 연결할 수 없습니다. {seconds}초 후 다시 시도합니다.",
    "js_your_turn": "입장하실 차례입니다!",
    "js_turn_expires": "{countdown} 동안 차례가 유지됩니다.",
    "js_redirecting": "다음 단계로 이동하는 중입니다…",
    "js_continue": "지금 계속하기",
    "js_rejoin": "대기열에 다시 들어가기",
    # order page (the demo protected target)
    "order_title": "주문 완료하기",
    "order_intro": "대기열을 통과했습니다. 주문을 마칠 때까지 자리가 예약되어 있습니다.",
    "order_item": "상품",
    "order_quantity": "수량",
    "order_complete": "주문 완료",
    "order_session_ends": "예약이 {countdown} 후에 끝납니다.",
    "order_session_limited": "예약은 정해진 시간 동안만 유지됩니다.",
    "order_session_over": "예약 시간이 끝났습니다.",
    "order_done_title": "감사합니다!",
    "order_done_text": "주문이 완료되었습니다. 자리는 다음 대기자에게 넘어갔습니다.",
    "order_used_title": "이미 사용한 입장 차례입니다",
    "order_used_text": "입장 차례는 한 번만 사용할 수 있습니다. 다시 주문하려면 대기열에 다시 들어가 주세요.",
    "order_expired_title": "입장 가능 시간이 지났습니다",
    "order_expired_text": "이곳에 오기 전에 입장 가능 시간이 끝났습니다. 대기열에 다시 들어가 주세요.",
    "order_invalid_title": "유효하지 않은 링크입니다",
    "order_invalid_text": "대기 순서를 확인할 수 없습니다. 대기실로 돌아가 주세요.",
    "order_back": "대기실로 돌아가기",
}

STRINGS: dict[str, dict[str, str]] = {"en": _EN, "ko": _KO}

_MAX_HEADER = 2000
_TAG = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_QVALUE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


def _supported(tag: str | None) -> str | None:
    """The supported language a tag names (``ko-KR`` -> ``ko``), if any."""
    if not tag:
        return None
    primary = tag.strip().split("-", 1)[0].split("_", 1)[0].lower()
    return primary if primary in LANGUAGES else None


def _parse_accept_language(header: str) -> list[tuple[str, float]]:
    """``(tag, q)`` pairs, best first; malformed entries are skipped."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header[:_MAX_HEADER].split(",")):
        tag, *params = (piece.strip() for piece in part.split(";"))
        if not _TAG.match(tag):
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                quality = float(value) if _QVALUE.match(value) else -1.0
        if quality < 0:
            continue
        ranked.append((-quality, index, tag))
    ranked.sort()
    return [(tag, -neg_q) for neg_q, _, tag in ranked]


def pick_language(accept_language: str | None, override: str | None) -> str:
    """The page language: a valid override, else the best Accept-Language match, else English."""
    chosen = _supported(override)
    if chosen:
        return chosen
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked = _parse_accept_language(accept_language)
    refused = {lang for tag, q in ranked if q == 0 and (lang := _supported(tag))}
    for tag, quality in ranked:
        if quality <= 0:
            continue
        if tag == "*":
            for lang in LANGUAGES:
                if lang not in refused:
                    return lang
            continue
        lang = _supported(tag)
        if lang and lang not in refused:
            return lang
    return DEFAULT_LANGUAGE


def strings_for(lang: str) -> dict[str, str]:
    """Every string of ``lang`` (English for an unknown language)."""
    return dict(STRINGS.get(lang, STRINGS[DEFAULT_LANGUAGE]))


def js_strings(lang: str) -> dict[str, str]:
    """The strings the waiting-room script needs, keyed without the ``js_`` prefix."""
    return {key.removeprefix(JS_PREFIX): value for key, value in strings_for(lang).items() if key.startswith(JS_PREFIX)}


def placeholders(text: str) -> set[str]:
    """The ``{name}`` placeholders of one string."""
    return set(PLACEHOLDER.findall(text))


def page_context(lang: str) -> dict[str, object]:
    """The language variables every template expects: ``lang``, ``t`` and ``js_strings``."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    return {
        "lang": lang,
        "t": strings_for(lang),
        "js_strings": js_strings(lang),
    }
