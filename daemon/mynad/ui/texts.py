"""What each screen says, in Japanese, with which key does what.

Wording follows the official leaflets (docs: /work/shared/docs/reception-flow.md,
seeds 000–004) as they are; a phrase is shortened only where the 256x64 panel
forces it, never changing the meaning. :func:`content` gives the structured
form the renderer lays out; :func:`screen_text` gives the same as one plain
string (lines joined with "\\n"), which is what the sim bus, logs and the
gallery show.

Keys are positions 1..12 of the 3x4 keypad (docs/architecture.md, "Keys"):
1, 2, 3 (and 4) are the screen's choices, 10 is the negative key
(終了する / 同意しない / 戻る), 12 the positive key (次に進む / 同意する / 決定).
On the PIN pad 10 is 取消 and 12 is クリア.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from mynad.ui.screens import Screen

NEG_KEY = 10
POS_KEY = 12
CHOICE_KEYS = (1, 2, 3, 4)

# Hints while the camera looks for a good frame (models: quality.HINTS,
# liveness/session hints) and the two the flow itself uses (ok, retry).
FACE_HINTS: dict[str, str] = {
    "ok": "カメラに顔を向けてください",
    "retry": "もう一度カメラに顔を向けてください",
    "no_face": "顔が見つかりません。カメラの正面に立ってください",
    "many_faces": "お一人ずつカメラに顔を向けてください",
    "too_far": "もう少しカメラに近づいてください",
    "too_close": "もう少しカメラから離れてください",
    "off_centre": "顔をカメラの正面に合わせてください",
    "too_dark": "顔が暗く写っています。明るい方を向いてください",
    "too_bright": "まぶしすぎます。逆光を避けてください",
    "backlight": "逆光です。照明を確認してください",
    "sunglasses": "サングラスを外してください",
    "mask": "マスクを外してください",
    "blurred": "顔を動かさないでください",
    "hold_still": "そのまま動かないでください",
    "turn_left": "ゆっくり顔を左に向けてください",
    "turn_right": "ゆっくり顔を右に向けてください",
    "face_front": "正面を向いてください",
    "head_straight": "顔を傾けずにまっすぐ向けてください",
    "blink": "まばたきをしてください",
    "checking": "確認しています。そのままお待ちください",
}
FACE_HINT_FALLBACK = "カメラに顔を向けてください"

# Why 顔認証 is not offered on this card, under the method choice (core.events.CardRead.face_note).
FACE_NOTES: dict[str, str] = {
    # One panel line each (the method choice leaves one body row): terse on purpose.
    "card_face_unreadable": "券面を読めないため顔認証不可",
    "code_b_reserve": "照合番号の残りが少なく顔認証不可",
    "code_b_locked": "照合番号ロックのため顔認証不可",
}

# Card / reader failures by reason key (mynad.card CardError.reason, shell reasons).
# Field practice: the patient tells staff the code shown under the message.
ERRORS: dict[str, str] = {
    "removed": "カードが取り出されました",
    "mute": "カードが応答しません。置き直してください",
    "timeout": "カードの読み取りに時間がかかりすぎました",
    "not_myna": "マイナンバーカード以外が置かれました",
    "bad_response": "カードを正しく読み取れませんでした",
    "cert_invalid": "電子証明書を確認できませんでした",
    "security": "カードの安全確認ができませんでした",
    "not_found": "カードに必要な情報が見つかりません",
    "locked": "暗証番号がロックされています",
    "wrong_pin": "暗証番号が違います",
    "photo_invalid": "カードの顔写真を読み取れませんでした",
    "reader": "カードリーダーの不具合です",
    "unexpected": "読み取りに失敗しました",
    "card_error": "カードの読み取りに失敗しました",
    "host_timeout": "資格確認端末と通信できませんでした",
    "storage_full": "記録領域がいっぱいで受付できません",
}
ERROR_FALLBACK = "読み取りに失敗しました"

METHOD_LABELS: dict[str, str] = {
    "face": "顔認証を行う",
    "pin": "暗証番号を入力",
    "proxy": "代理人が入力",
    "staff": "職員が確認",
}

CONSENT_QUESTIONS: dict[str, str] = {
    "surgery": "過去の手術情報を当機関に提供することに同意しますか。",
    "care_medicine": "過去の手術以外の診療・お薬情報を当機関に提供することに同意しますか。",
    "checkup": "過去の検診情報を当機関に提供することに同意しますか。",
    # 包括同意 (since 2024-10): exact official wording unverified (domain-research A.2.7).
    "comprehensive": "診療・お薬・検診などの情報の提供にまとめて同意しますか。",
    # 限度額 (dropped by the official screens on 2024-10-07; kept for configs that ask).
    "limit": "限度額情報を当機関に提供することに同意しますか。",
}
CONSENT_PURPOSE = "この情報はあなたの診察や健康管理のために使用します。"
LIMIT_PURPOSE = "高額療養費制度の限度額を超える支払いが免除されます。"
CONSENT_SHORT: dict[str, str] = {
    "surgery": "手術情報",
    "care_medicine": "診療・お薬情報",
    "checkup": "検診情報",
    "comprehensive": "包括同意",
    "limit": "限度額情報",
}

PIN_PROMPT = "暗証番号（数字4桁）を入力してください"
PIN_WRONG = "正しい暗証番号を入力してください"
PIN_NOTE = "注）番号位置は入れ替わります"
PIN_CANCEL = "取消"
PIN_CLEAR = "クリア"
DOT_ON, DOT_OFF = "●", "○"


@dataclass(frozen=True)
class Content:
    """A screen's words, before layout.

    ``lines``: the message, one paragraph per item (wrapped by the renderer);
    ``choices``: (key, label) for keys 1..4; ``neg`` / ``pos``: labels of keys 10 / 12;
    PIN pad screens also set ``pad`` (12 labels), ``dots`` (entered, length),
    ``tries`` (「あと2回」), ``tag`` (e.g. 代理人入力) and ``note``.
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


def error_text(reason: Any) -> str:
    """The message for a card reason key; unknown keys (and 'unexpected: X') fall back."""
    key = str(reason or "").split(":", 1)[0].strip()
    return ERRORS.get(key, ERROR_FALLBACK)


def face_hint_text(hint: Any) -> str:
    return FACE_HINTS.get(str(hint or "ok"), FACE_HINT_FALLBACK)


def code_line(code: Any) -> str | None:
    return f"エラーコード: {code}" if code not in (None, "") else None


def dots_text(entered: int, length: int) -> str:
    entered = max(0, min(int(entered or 0), length))
    return " ".join([DOT_ON] * entered + [DOT_OFF] * (length - entered))


def tries_text(tries_left: Any) -> str | None:
    if isinstance(tries_left, int) and not isinstance(tries_left, bool) and 0 < tries_left < 3:
        return f"あと{tries_left}回"
    return None


def _choices(keys: Any) -> tuple[tuple[int, str], ...]:
    out = []
    for key, c in zip(CHOICE_KEYS, tuple(keys or ())):
        out.append((key, METHOD_LABELS.get(str(c), str(c))))
    return tuple(out)


def _answer(value: Any) -> str:
    return "同意する" if value else "同意しない"


def content(screen: Screen) -> Content:
    """The structured words of ``screen`` (every id in SCREENS has a branch)."""
    p: Mapping[str, Any] = screen.params or {}
    sid = screen.id
    if sid == "idle":
        if p.get("mode") == "visual":
            return Content(("目視確認モード", "マイナ保険証を置いてください", "職員が本人確認を行います"))
        return Content(("マイナ保険証を置いてください", "置くと受付が始まります"))
    if sid == "reading":
        return Content(("読み取っています", "カードを動かさないでください"))
    if sid in ("card_error", "fault"):
        head = "カードリーダーの不具合です" if sid == "fault" and p.get("reason") != "reader" else None
        lines = [x for x in (head, error_text(p.get("reason")), "受付窓口にお声がけください",
                             code_line(p.get("code"))) if x]
        return Content(tuple(lines))
    if sid == "cert_expiring":
        return Content(("証明書の有効期限が3カ月以内となっています。",
                        "自宅に送付される有効期限通知書をご覧ください。"), pos="次に進む")
    if sid == "cert_grace":
        return Content(("電子証明書の有効期限が切れているため、資格情報のみ当機関に提供します。",
                        "お早めに市区町村窓口にお問い合わせください。"), pos="次に進む")
    if sid == "cert_expired":
        return Content(("電子証明書が失効しています。",
                        "マイナンバーカードを取り出し、受付窓口までお越しください。",
                        "詳細は市区町村窓口にお問い合わせください。", "エラーコード: 006"))
    if sid == "method_choice":
        note = FACE_NOTES.get(str(p.get("note"))) if p.get("note") else None
        lines = ("本人確認の方法を選んでください",) + ((note,) if note else ())
        return Content(lines, choices=_choices(p.get("choices")), neg="終了する")
    if sid == "face_guide":
        lines = [face_hint_text(p.get("hint"))]
        attempt, attempts = p.get("attempt"), p.get("attempts")
        if isinstance(attempt, int) and isinstance(attempts, int) and attempts > 1:
            lines.append(f"顔認証（{attempt}/{attempts}回目）")
        return Content(tuple(lines), neg="戻る")
    if sid == "face_checking":
        return Content(("顔を確認しています", "そのままお待ちください"))
    if sid == "face_failed":
        choices = _choices(p.get("choices"))
        lines = ["顔認証ができませんでした"]
        lines.append("ほかの方法を選んでください" if choices else "受付窓口にお声がけください")
        return Content(tuple(lines), choices=choices, neg="終了する")
    if sid == "pin_entry":
        layout = tuple(p.get("layout") or ())
        return Content(
            (PIN_WRONG if p.get("wrong") else PIN_PROMPT,),
            neg=PIN_CANCEL, pos=PIN_CLEAR,
            pad=layout if len(layout) == 12 else None,
            dots=(int(p.get("entered") or 0), 4),
            tries=tries_text(p.get("tries_left")),
            tag="代理人入力" if p.get("proxy") else None,
            note=(PIN_NOTE,),
        )
    if sid == "pin_last_try":
        return Content(("暗証番号の入力は残り1回です。",
                        "間違えるとロックされ、市区町村窓口での解除が必要になります。"),
                       neg="戻る", pos="次に進む")
    if sid == "pin_backoff":
        return Content(("暗証番号が違います", f"{_seconds(p.get('seconds'))}お待ちください"))
    if sid == "pin_locked":
        choices = _choices(p.get("choices"))
        lines = ["暗証番号がロックされています。", "市区町村窓口で解除してください。"]
        if choices:
            lines.append("ほかの方法を選んでください")
        return Content(tuple(lines), choices=choices, neg="終了する")
    if sid == "pin_throttled":
        return Content(("暗証番号の入力を一時停止しています",
                        f"{_seconds(p.get('seconds'))}後にお試しください"), neg="終了する")
    if sid == "verifying":
        return Content(("確認しています", "しばらくお待ちください"))
    if sid == "consent_carryover":
        prev = p.get("previous") or {}
        lines = ["前回の同意状況を引き継ぎますか"]
        lines += [f"{CONSENT_SHORT.get(str(k), str(k))}：{_answer(v)}" for k, v in prev.items()]
        return Content(tuple(lines), neg="変更する", pos="引き継ぐ")
    if sid == "consent":
        item = str(p.get("item"))
        head = ""
        if isinstance(p.get("index"), int) and isinstance(p.get("total"), int):
            head = f"{p['index']}/{p['total']}"
        if item == "checkup":
            head += "（40歳以上対象）"
        elif item == "comprehensive":
            head += " 包括同意"
        prev = p.get("previous")
        if prev is not None:
            head += f" 前回：{_answer(prev)}"
        head = head.strip() or "同意の確認"
        question = CONSENT_QUESTIONS.get(item, f"{CONSENT_SHORT.get(item, item)}の提供に同意しますか。")
        purpose = LIMIT_PURPOSE if item == "limit" else CONSENT_PURPOSE
        neg = "同意しない・40歳未満の方" if item == "checkup" else "同意しない"
        return Content((head, question, purpose), neg=neg, pos="同意する")
    if sid == "registration_offer":
        return Content(("マイナ保険証の利用登録がまだ済んでいません。", "この場で利用登録しますか。"),
                       neg="登録しない", pos="登録する")
    if sid == "registration_done":
        return Content(("利用登録が完了しました",), pos="次に進む")
    if sid == "done":
        name = str(p.get("name") or "").strip()
        lines = [f"{name}様 確認が完了しました。" if name else "確認が完了しました。"]
        if p.get("qualification_only"):
            lines.append("資格情報のみ提供しました。")
        lines += ["お呼びするまでお待ちください。", "カードを忘れずに！"]
        return Content(tuple(lines))
    if sid == "remove_card":
        if p.get("reminder"):
            return Content(("カードを忘れずに！",
                            "忘れずに顔認証付きカードリーダーからマイナンバーカードを取り出してください。"))
        return Content(("マイナンバーカードを取り出してください", "お呼びするまでお待ちください。"))
    if sid == "host_wait":
        return Content(("資格情報を確認しています", "しばらくお待ちください"))
    if sid == "host_error":
        lines = ["資格情報を確認できませんでした", "受付窓口にお声がけください", code_line(p.get("code"))]
        return Content(tuple(x for x in lines if x))
    if sid == "saving":
        lines = ["受付結果を記録しています", "しばらくお待ちください"]
        if p.get("code"):
            lines = ["受付結果を記録できません", "受付窓口にお声がけください", code_line(p.get("code"))]
        return Content(tuple(lines))
    if sid == "visual_check":
        if p.get("stage") == "locked":
            return Content(("職員用パスワードの入力を一時停止しています", "ほかの方法を選んでください"),
                           pos="戻る", tag="目視確認（職員）")
        if p.get("stage") == "not_set":
            return Content(("職員用パスワードが未設定のため目視確認は使えません", "ほかの方法を選んでください"),
                           pos="戻る", tag="目視確認（職員）")
        if p.get("stage") == "confirm":
            return Content(("目視確認：職員が本人を確認します", "カードの写真とご本人を確認してください"),
                           neg="確認できない", pos="確認した")
        layout = tuple(p.get("layout") or ())
        length = p.get("length")
        length = length if isinstance(length, int) and length > 0 else 6
        return Content(("職員用パスワードを入力してください",), neg=PIN_CANCEL, pos=PIN_CLEAR,
                       pad=layout if len(layout) == 12 else None,
                       dots=(int(p.get("entered") or 0), length), tag="目視確認（職員）")
    if sid == "cancelled":
        why = {
            "timeout": "一定時間操作がなかったため、受付を終了しました",
            "card_removed": "カードが取り出されたため、受付を終了しました",
        }.get(str(p.get("reason")), "受付を終了しました")
        return Content((why, "受付窓口にお声がけください"))
    raise KeyError(f"no text for screen {sid!r}")  # pragma: no cover - SCREENS is closed


def _seconds(value: Any) -> str:
    try:
        s = max(0, int(value))
    except (TypeError, ValueError):
        return "しばらく"
    if s >= 120:
        return f"約{(s + 59) // 60}分"
    return f"{s}秒"


def key_lines(c: Content) -> list[str]:
    """Which key does what, as plain text lines ("1: 顔認証を行う")."""
    out = [f"{k}: {label}" for k, label in c.choices]
    if c.neg:
        out.append(f"{NEG_KEY}: {c.neg}")
    if c.pos:
        out.append(f"{POS_KEY}: {c.pos}")
    return out


def screen_text(screen: Screen) -> str:
    """The plain Japanese text of ``screen``: message lines, then the keys."""
    c = content(screen)
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
