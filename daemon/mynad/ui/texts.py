"""What each screen says, with which key does what, in the patient's language.

Japanese is the source: the wording follows the official leaflets (docs/reception-flow.md,
sources in docs/sources.md §S1) as they are; a phrase is shortened only where the 256x64
panel forces it, never changing the meaning. Every Japanese text is marked with ``N_`` for
extraction and translated when a screen is built (:mod:`mynad.ui.i18n`, gettext catalogues
in ``mynad/locale``); the translations keep the Japanese meaning row by row (docs/languages.md).

:func:`content` gives the structured form the renderer lays out; :func:`screen_text` gives
the same as one plain string (lines joined with "\\n"), which is what the sim bus, logs and
the gallery show; :func:`message_text` leaves out the shuffled PIN pad and the masked digits
(what voice guidance may speak).

Keys are positions 1..12 of the 3x4 keypad (docs/architecture.md, "Keys"):
1, 2, 3 (and 4) are the screen's choices, 10 is the negative key
(終了する / 同意しない / 戻る), 12 the positive key (次に進む / 同意する / 決定).
On the PIN pad 10 is 取消 and 12 is クリア. 11 opens the language menu on the first
screen after the card is read (method choice, certificate notices); the menu itself
offers the languages on 1..7, the text size on 12 and 戻る on 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from mynad.core import codes
from mynad.ui.i18n import DEFAULT_LANG, LANGUAGES, N_, translations
from mynad.ui.screens import Screen

NEG_KEY = 10
LANG_KEY = 11
POS_KEY = 12
CHOICE_KEYS = (1, 2, 3, 4)
LANGUAGE_MENU_KEYS = tuple(range(1, len(LANGUAGES) + 1))
# Screens on which key 11 opens the language menu (the flow's states "method" and "cert_notice").
LANGUAGE_KEY_SCREENS = frozenset({"method_choice", "cert_expiring", "cert_grace"})

# Hints while the camera looks for a good frame (models: quality.HINTS,
# liveness/session hints) and the two the flow itself uses (ok, retry).
FACE_HINTS: dict[str, str] = {
    "ok": N_("カメラに顔を向けてください"),
    "retry": N_("もう一度カメラに顔を向けてください"),
    "no_face": N_("顔が見つかりません。カメラの正面に立ってください"),
    "many_faces": N_("お一人ずつカメラに顔を向けてください"),
    "too_far": N_("もう少しカメラに近づいてください"),
    "too_close": N_("もう少しカメラから離れてください"),
    "off_centre": N_("顔をカメラの正面に合わせてください"),
    "too_dark": N_("顔が暗く写っています。明るい方を向いてください"),
    "too_bright": N_("まぶしすぎます。逆光を避けてください"),
    "backlight": N_("逆光です。照明を確認してください"),
    "sunglasses": N_("サングラスを外してください"),
    "mask": N_("マスクを外してください"),
    "blurred": N_("顔を動かさないでください"),
    "hold_still": N_("そのまま動かないでください"),
    "turn_left": N_("ゆっくり顔を左に向けてください"),
    "turn_right": N_("ゆっくり顔を右に向けてください"),
    "face_front": N_("正面を向いてください"),
    "head_straight": N_("顔を傾けずにまっすぐ向けてください"),
    "blink": N_("まばたきをしてください"),
    "checking": N_("確認しています。そのままお待ちください"),
}
FACE_HINT_FALLBACK = N_("カメラに顔を向けてください")

# Why 顔認証 is not offered on this card, under the method choice (core.events.CardRead.face_note).
FACE_NOTES: dict[str, str] = {
    # One panel line each (the method choice leaves one body row): terse on purpose.
    "card_face_unreadable": N_("券面を読めないため顔認証不可"),
    "code_b_reserve": N_("照合番号の残りが少なく顔認証不可"),
    "code_b_locked": N_("照合番号ロックのため顔認証不可"),
}

# Card / reader / visit failures by reason key: the patient texts of the one reader-code
# table (mynad.core.codes, kept there as plain Japanese and extracted from there into the
# catalogues; docs/error-codes.md). The patient tells staff the code shown under the message.
ERRORS: dict[str, str] = codes.patient_texts()
ERROR_FALLBACK = N_("読み取りに失敗しました")

METHOD_LABELS: dict[str, str] = {
    "face": N_("顔認証を行う"),
    "pin": N_("暗証番号を入力"),
    "proxy": N_("代理人が入力"),
    "staff": N_("職員が確認"),
}

CONSENT_QUESTIONS: dict[str, str] = {
    "surgery": N_("過去の手術情報を当機関に提供することに同意しますか。"),
    "care_medicine": N_("過去の手術以外の診療・お薬情報を当機関に提供することに同意しますか。"),
    "checkup": N_("過去の検診情報を当機関に提供することに同意しますか。"),
    # 包括同意 (since 2024-10): exact official wording unverified (docs/sources.md §S4).
    "comprehensive": N_("診療・お薬・検診などの情報の提供にまとめて同意しますか。"),
    # 限度額 (dropped by the official screens on 2024-10-07; kept for configs that ask).
    "limit": N_("限度額情報を当機関に提供することに同意しますか。"),
}
CONSENT_PURPOSE = N_("この情報はあなたの診察や健康管理のために使用します。")
LIMIT_PURPOSE = N_("高額療養費制度の限度額を超える支払いが免除されます。")
CONSENT_SHORT: dict[str, str] = {
    "surgery": N_("手術情報"),
    "care_medicine": N_("診療・お薬情報"),
    "checkup": N_("検診情報"),
    "comprehensive": N_("包括同意"),
    "limit": N_("限度額情報"),
}

PIN_PROMPT = N_("暗証番号（数字4桁）を入力してください")
PIN_WRONG = N_("正しい暗証番号を入力してください")
PIN_NOTE = N_("注）番号位置は入れ替わります")
PIN_CANCEL = N_("取消")
PIN_CLEAR = N_("クリア")
DOT_ON, DOT_OFF = "●", "○"
# Key 11 on the first screen: "Language" stays in English in every catalogue so that a
# patient who cannot read the current language still finds it; the rest says "text size".
LANGUAGE_KEY_LABEL = N_("Language・文字サイズ")


@dataclass(frozen=True)
class Content:
    """A screen's words, before layout.

    ``lines``: the message, one paragraph per item (wrapped by the renderer);
    ``choices``: (key, label) for keys 1..4 (1..7 on the language menu); ``neg`` / ``mid`` /
    ``pos``: labels of keys 10 / 11 / 12; PIN pad screens also set ``pad`` (12 labels),
    ``dots`` (entered, length), ``tries`` (「あと2回」), ``tag`` (e.g. 代理人入力) and ``note``.
    ``lang``: the language the words are in (the renderer picks the font face by it);
    ``choice_langs``: on the language menu, the language of each choice (its own name).
    """

    lines: tuple[str, ...]
    choices: tuple[tuple[int, str], ...] = ()
    neg: str | None = None
    pos: str | None = None
    pad: tuple[str, ...] | None = None
    dots: tuple[int, int] | None = None
    tries: str | None = None
    tag: str | None = None
    note: tuple[str, ...] = ()
    mid: str | None = None
    lang: str = DEFAULT_LANG
    choice_langs: tuple[str, ...] = ()  # language menu: each choice drawn in its own language's face


def _tr(lang: str) -> Callable[[str], str]:
    return translations(lang).gettext


def error_text(reason: Any, lang: str = DEFAULT_LANG) -> str:
    """The message for a card reason key; unknown keys (and 'unexpected: X') fall back."""
    key = str(reason or "").split(":", 1)[0].strip()
    return _tr(lang)(ERRORS.get(key, ERROR_FALLBACK))


def face_hint_text(hint: Any, lang: str = DEFAULT_LANG) -> str:
    return _tr(lang)(FACE_HINTS.get(str(hint or "ok"), FACE_HINT_FALLBACK))


def code_line(code: Any, lang: str = DEFAULT_LANG) -> str | None:
    return _tr(lang)(N_("エラーコード: {code}")).format(code=code) if code not in (None, "") else None


def dots_text(entered: int, length: int) -> str:
    entered = max(0, min(int(entered or 0), length))
    return " ".join([DOT_ON] * entered + [DOT_OFF] * (length - entered))


def tries_text(tries_left: Any, lang: str = DEFAULT_LANG) -> str | None:
    if isinstance(tries_left, int) and not isinstance(tries_left, bool) and 0 < tries_left < 3:
        return _tr(lang)(N_("あと{n}回")).format(n=tries_left)
    return None


def _choices(keys: Any, t: Callable[[str], str]) -> tuple[tuple[int, str], ...]:
    out = []
    for key, c in zip(CHOICE_KEYS, tuple(keys or ())):
        label = METHOD_LABELS.get(str(c))
        out.append((key, t(label) if label else str(c)))
    return tuple(out)


def _answer(value: Any, t: Callable[[str], str]) -> str:
    return t(N_("同意する")) if value else t(N_("同意しない"))


def _seconds(value: Any, t: Callable[[str], str]) -> str:
    try:
        s = max(0, int(value))
    except (TypeError, ValueError):
        return t(N_("しばらく"))
    if s >= 120:
        return t(N_("約{minutes}分")).format(minutes=(s + 59) // 60)
    return t(N_("{seconds}秒")).format(seconds=s)


def content(screen: Screen, lang: str = DEFAULT_LANG) -> Content:
    """The structured words of ``screen`` in ``lang`` (every id in SCREENS has a branch)."""
    c = _content(screen, _tr(lang))
    extra: dict[str, Any] = {"lang": lang}
    if screen.id in LANGUAGE_KEY_SCREENS:
        extra["mid"] = _tr(lang)(LANGUAGE_KEY_LABEL)
    return Content(**{**c.__dict__, **extra})


def _content(screen: Screen, t: Callable[[str], str]) -> Content:
    p: Mapping[str, Any] = screen.params or {}
    sid = screen.id
    if sid == "idle":
        if p.get("mode") == "visual":
            return Content((t(N_("目視確認モード")), t(N_("マイナ保険証を置いてください")),
                            t(N_("職員が本人確認を行います"))))
        return Content((t(N_("マイナ保険証を置いてください")), t(N_("置くと受付が始まります"))))
    if sid == "reading":
        return Content((t(N_("読み取っています")), t(N_("カードを動かさないでください"))))
    if sid in ("card_error", "fault"):
        head = t(N_("カードリーダーの不具合です")) if sid == "fault" and p.get("reason") != "reader" else None
        key = str(p.get("reason") or "").split(":", 1)[0].strip()
        lines = [x for x in (head, t(ERRORS.get(key, ERROR_FALLBACK)), t(N_("受付窓口にお声がけください")),
                             _code(p.get("code"), t)) if x]
        return Content(tuple(lines))
    if sid == "cert_expiring":
        return Content((t(N_("証明書の有効期限が3カ月以内となっています。")),
                        t(N_("自宅に送付される有効期限通知書をご覧ください。"))), pos=t(N_("次に進む")))
    if sid == "cert_grace":
        return Content((t(N_("電子証明書の有効期限が切れているため、資格情報のみ当機関に提供します。")),
                        t(N_("お早めに市区町村窓口にお問い合わせください。"))), pos=t(N_("次に進む")))
    if sid == "cert_expired":
        return Content((t(N_("電子証明書が失効しています。")),
                        t(N_("マイナンバーカードを取り出し、受付窓口までお越しください。")),
                        t(N_("詳細は市区町村窓口にお問い合わせください。")), _code(codes.CERT_EXPIRED.code, t) or ""))
    if sid == "method_choice":
        note = FACE_NOTES.get(str(p.get("note"))) if p.get("note") else None
        head_lines = (t(N_("本人確認の方法を選んでください")),) + ((t(note),) if note else ())
        return Content(head_lines, choices=_choices(p.get("choices"), t), neg=t(N_("終了する")))
    if sid == "face_guide":
        lines = [t(FACE_HINTS.get(str(p.get("hint") or "ok"), FACE_HINT_FALLBACK))]
        attempt, attempts = p.get("attempt"), p.get("attempts")
        if isinstance(attempt, int) and isinstance(attempts, int) and attempts > 1:
            lines.append(t(N_("顔認証（{attempt}/{attempts}回目）")).format(attempt=attempt, attempts=attempts))
        return Content(tuple(lines), neg=t(N_("戻る")))
    if sid == "face_checking":
        return Content((t(N_("顔を確認しています")), t(N_("そのままお待ちください"))))
    if sid == "face_failed":
        choices = _choices(p.get("choices"), t)
        lines = [t(N_("顔認証ができませんでした"))]
        lines.append(t(N_("ほかの方法を選んでください")) if choices else t(N_("受付窓口にお声がけください")))
        return Content(_with_code(lines, p, t), choices=choices, neg=t(N_("終了する")))
    if sid == "pin_entry":
        layout = tuple(p.get("layout") or ())
        return Content(
            (t(PIN_WRONG) if p.get("wrong") else t(PIN_PROMPT),),
            neg=t(PIN_CANCEL), pos=t(PIN_CLEAR),
            pad=_pad_labels(layout, t) if len(layout) == 12 else None,
            dots=(int(p.get("entered") or 0), 4),
            tries=_tries(p.get("tries_left"), t),
            tag=t(N_("代理人入力")) if p.get("proxy") else None,
            note=(t(PIN_NOTE),),
        )
    if sid == "pin_last_try":
        return Content((t(N_("暗証番号の入力は残り1回です。")),
                        t(N_("間違えるとロックされ、市区町村窓口での解除が必要になります。"))),
                       neg=t(N_("戻る")), pos=t(N_("次に進む")))
    if sid == "pin_backoff":
        return Content(_with_code([t(N_("暗証番号が違います")),
                                   t(N_("{time}お待ちください")).format(time=_seconds(p.get("seconds"), t))], p, t))
    if sid == "pin_locked":
        choices = _choices(p.get("choices"), t)
        lines = [t(N_("暗証番号がロックされています。")), t(N_("市区町村窓口で解除してください。"))]
        if choices:
            lines.append(t(N_("ほかの方法を選んでください")))
        return Content(_with_code(lines, p, t), choices=choices, neg=t(N_("終了する")))
    if sid == "pin_throttled":
        return Content(_with_code([t(N_("暗証番号の入力を一時停止しています")),
                                   t(N_("{time}後にお試しください")).format(time=_seconds(p.get("seconds"), t))], p, t),
                       neg=t(N_("終了する")))
    if sid == "verifying":
        return Content((t(N_("確認しています")), t(N_("しばらくお待ちください"))))
    if sid == "consent_carryover":
        prev = p.get("previous") or {}
        lines = [t(N_("前回の同意状況を引き継ぎますか"))]
        lines += [t(N_("{item}：{answer}")).format(item=_short(k, t), answer=_answer(v, t)) for k, v in prev.items()]
        return Content(tuple(lines), neg=t(N_("変更する")), pos=t(N_("引き継ぐ")))
    if sid == "consent":
        item = str(p.get("item"))
        heads: list[str] = []
        if isinstance(p.get("index"), int) and isinstance(p.get("total"), int):
            heads.append(f"{p['index']}/{p['total']}")
        if item == "checkup":
            heads.append(t(N_("（40歳以上対象）")))
        elif item == "comprehensive":
            heads.append(t(N_("包括同意")))
        prev = p.get("previous")
        if prev is not None:
            heads.append(t(N_("前回：{answer}")).format(answer=_answer(prev, t)))
        head_line = " ".join(heads) or t(N_("同意の確認"))
        q = CONSENT_QUESTIONS.get(item)
        question = t(q) if q else t(N_("{item}の提供に同意しますか。")).format(item=_short(item, t))
        purpose = t(LIMIT_PURPOSE) if item == "limit" else t(CONSENT_PURPOSE)
        neg = t(N_("同意しない・40歳未満の方")) if item == "checkup" else t(N_("同意しない"))
        return Content((head_line, question, purpose), neg=neg, pos=t(N_("同意する")))
    if sid == "registration_offer":
        return Content((t(N_("マイナ保険証の利用登録がまだ済んでいません。")), t(N_("この場で利用登録しますか。"))),
                       neg=t(N_("登録しない")), pos=t(N_("登録する")))
    if sid == "registration_done":
        return Content((t(N_("利用登録が完了しました")),), pos=t(N_("次に進む")))
    if sid == "done":
        name = str(p.get("name") or "").strip()
        lines = [t(N_("{name}様 確認が完了しました。")).format(name=name) if name else t(N_("確認が完了しました。"))]
        if p.get("qualification_only"):
            lines.append(t(N_("資格情報のみ提供しました。")))
        lines += [t(N_("お呼びするまでお待ちください。")), t(N_("カードを忘れずに！"))]
        return Content(tuple(lines))
    if sid == "remove_card":
        if p.get("reminder"):
            return Content((t(N_("カードを忘れずに！")),
                            t(N_("忘れずに顔認証付きカードリーダーからマイナンバーカードを取り出してください。"))))
        return Content((t(N_("マイナンバーカードを取り出してください")), t(N_("お呼びするまでお待ちください。"))))
    if sid == "host_wait":
        return Content((t(N_("資格情報を確認しています")), t(N_("しばらくお待ちください"))))
    if sid == "host_error":
        host: list[str | None] = [t(N_("資格情報を確認できませんでした")), t(N_("受付窓口にお声がけください")),
                                  _code(p.get("code"), t)]
        return Content(tuple(x for x in host if x))
    if sid == "saving":
        saving: list[str | None] = [t(N_("受付結果を記録しています")), t(N_("しばらくお待ちください"))]
        if p.get("code"):
            saving = [t(N_("受付結果を記録できません")), t(N_("受付窓口にお声がけください")), _code(p.get("code"), t)]
        return Content(tuple(x for x in saving if x))
    if sid == "visual_check":
        tag = t(N_("目視確認（職員）"))
        if p.get("stage") == "locked":
            return Content(_with_code([t(N_("職員用パスワードの入力を一時停止しています")),
                                       t(N_("ほかの方法を選んでください"))], p, t), pos=t(N_("戻る")), tag=tag)
        if p.get("stage") == "not_set":
            return Content(_with_code([t(N_("職員用パスワードが未設定のため目視確認は使えません")),
                                       t(N_("ほかの方法を選んでください"))], p, t), pos=t(N_("戻る")), tag=tag)
        if p.get("stage") == "confirm":
            return Content((t(N_("目視確認：職員が本人を確認します")), t(N_("カードの写真とご本人を確認してください"))),
                           neg=t(N_("確認できない")), pos=t(N_("確認した")))
        layout = tuple(p.get("layout") or ())
        length = p.get("length")
        length = length if isinstance(length, int) and length > 0 else 6
        return Content((t(N_("職員用パスワードを入力してください")),), neg=t(PIN_CANCEL), pos=t(PIN_CLEAR),
                       pad=_pad_labels(layout, t) if len(layout) == 12 else None,
                       dots=(int(p.get("entered") or 0), length), tag=tag)
    if sid == "cancelled":
        why = {
            "timeout": N_("一定時間操作がなかったため、受付を終了しました"),
            "card_removed": N_("カードが取り出されたため、受付を終了しました"),
        }.get(str(p.get("reason")), N_("受付を終了しました"))
        return Content(_with_code([t(why), t(N_("受付窓口にお声がけください"))], p, t))
    if sid == "language":
        # Each language in its own name (readable whatever the current language is).
        choices = tuple((k, lang.name) for k, lang in zip(LANGUAGE_MENU_KEYS, LANGUAGES))
        return Content((), choices=choices, neg=t(N_("戻る")), pos=t(N_("文字の大きさ")),
                       choice_langs=tuple(lang.code for lang in LANGUAGES))
    raise KeyError(f"no text for screen {sid!r}")  # pragma: no cover - SCREENS is closed


def _with_code(lines: list[str], p: Mapping[str, Any], t: Callable[[str], str]) -> tuple[str, ...]:
    """``lines``, then 「エラーコード: NNN」 when the flow gave the screen a code (docs/error-codes.md)."""
    code = _code(p.get("code"), t)
    return tuple(lines) + ((code,) if code else ())


def _code(code: Any, t: Callable[[str], str]) -> str | None:
    return t(N_("エラーコード: {code}")).format(code=code) if code not in (None, "") else None


def _tries(tries_left: Any, t: Callable[[str], str]) -> str | None:
    if isinstance(tries_left, int) and not isinstance(tries_left, bool) and 0 < tries_left < 3:
        return t(N_("あと{n}回")).format(n=tries_left)
    return None


def _short(item: Any, t: Callable[[str], str]) -> str:
    short = CONSENT_SHORT.get(str(item))
    return t(short) if short else str(item)


def _pad_labels(layout: tuple, t: Callable[[str], str]) -> tuple[str, ...]:
    """The pad as laid out, with 取消 / クリア in the patient's language (digits stay digits)."""
    return tuple(str(x) if str(x).isdigit() else t(str(x)) for x in layout)


def key_lines(c: Content) -> list[str]:
    """Which key does what, as plain text lines ("1: 顔認証を行う")."""
    out = [f"{k}: {label}" for k, label in c.choices]
    if c.neg:
        out.append(f"{NEG_KEY}: {c.neg}")
    if c.mid:
        out.append(f"{LANG_KEY}: {c.mid}")
    if c.pos:
        out.append(f"{POS_KEY}: {c.pos}")
    return out


def screen_text(screen: Screen, lang: str = DEFAULT_LANG) -> str:
    """The plain text of ``screen`` in ``lang``: message lines, masked digits, tag, note,
    the PIN pad as laid out (rows of three), then the keys. What the panel shows, as text."""
    return content_text(content(screen, lang))


def content_text(c: Content) -> str:
    """``screen_text`` of content already built (the display builds it once per screen)."""
    lines = list(c.lines)
    if c.dots is not None:
        dots = dots_text(*c.dots)
        lines.append(f"{dots}  {c.tries}" if c.tries else dots)
    if c.tag:
        lines.append(c.tag)
    lines += list(c.note)
    if c.pad is not None:
        for r in range(4):
            lines.append(" ".join(c.pad[r * 3:r * 3 + 3]))
    lines += key_lines(c)
    return "\n".join(lines)


def message_text(screen: Screen, lang: str = DEFAULT_LANG) -> str:
    """The words of ``screen`` in ``lang`` without the shuffled pad or the masked digits:
    message lines, tries left, tag, note, then the keys (what voice guidance may speak; a
    pad's key positions and the count of digits typed never appear)."""
    c = content(screen, lang)
    lines = list(c.lines)
    if c.tries:
        lines.append(c.tries)
    if c.tag:
        lines.append(c.tag)
    lines += list(c.note)
    lines += key_lines(c)
    return "\n".join(lines)
