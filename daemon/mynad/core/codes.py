"""The one table of reader error codes: one code per cause, as data.

Why a table: staff at the counter read the three digits off the panel (or off the
clinic host) and phone support with them. A code is only useful if it names one
cause, and if the card layer, the flow, the shell, the screens, the gallery, the
host messages and the staff sheet (docs/error-codes.md, generated from here) all
agree on it. The daemon takes every code and reason key from this table
(tests/core/test_codes.py greps for literals and for reasons without a code).

Numbering (first two digits = the part of the reader to look at):

* ``00x`` codes that certified readers in the field also show, kept for the same
  meaning: 001 the card cannot be recognised, 002 not a My Number card, 006 the
  user-authentication certificate is expired or revoked (docs/sources.md,
  "Reader error codes seen in the field"). 003–005 and 007–009 are left unused:
  what real readers mean by them is not known to us.
* ``01x`` proving who the patient is: PIN, face, 照合番号B.
* ``02x`` the clinic host (資格確認端末): no answer, refusals. 021, 023, 024 and 025
  are codes the host sends in ``visit.qualification``; the reader shows them as-is.
* ``03x`` the visit ended before it was finished (patient, staff, restart).
* ``04x`` the reader's own storage.
* ``05x`` talking to the card (APDU level).
* ``09x`` the card reader device and the PC/SC service.

Reason keys are one namespace: card-layer ``CardError.reason``, the flow's abort
reasons, reader-event kinds and screen ``reason`` parameters all use these keys,
so ``by_reason`` answers for any of them. Patient texts are plain Japanese
strings on purpose: the message catalogues of the UI are extracted from them.

Pure data and lookups: no I/O. ``python -m mynad.core.codes --markdown`` prints
the staff sheet.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

SCREEN, HOST, LOG = "screen", "host", "log"


@dataclass(frozen=True)
class ReaderCode:
    """One cause. ``seen`` says who sees the code: the panel, the host messages, the journal.

    ``screen`` is the screen id that shows the cause (None: never on the panel);
    ``patient`` is the short Japanese sentence the panel says for it.
    """

    code: str
    reason: str
    patient: str
    meaning_ja: str
    meaning_en: str
    action_ja: str
    action_en: str
    seen: tuple[str, ...]
    screen: str | None

    def __post_init__(self) -> None:
        if not (len(self.code) == 3 and self.code.isascii() and self.code.isdigit()):
            raise ValueError(f"reader code {self.code!r} is not three ASCII digits")
        if not set(self.seen) <= {SCREEN, HOST, LOG}:
            raise ValueError(f"{self.code}: unknown audience in {self.seen}")
        if (self.screen is None) == (SCREEN in self.seen):
            raise ValueError(f"{self.code}: a cause seen on the screen names its screen, and only then")


_ALL: list[ReaderCode] = []


def _c(code: str, reason: str, patient: str, meaning_ja: str, meaning_en: str, action_ja: str, action_en: str,
       seen: tuple[str, ...], screen: str | None = None) -> ReaderCode:
    entry = ReaderCode(code, reason, patient, meaning_ja, meaning_en, action_ja, action_en, seen, screen)
    _ALL.append(entry)
    return entry


_SHL = (SCREEN, HOST, LOG)
_SL = (SCREEN, LOG)
_HL = (HOST, LOG)

# ---------------------------------------------------------------- 00x: as on readers in the field

CARD_MUTE = _c(
    "001", "mute", "カードが応答しません。置き直してください",
    "カードを認識できない（カードが応答しない・時間内に応答しない）",
    "the card cannot be recognised: it does not answer, or not in time",
    "カードの向き・位置を直して置き直す。ケースから出す。別のカードで試し、カードと装置のどちらの問題かを切り分ける。",
    "Re-seat the card (face, direction, out of any case); try another card to tell a card fault from a reader fault.",
    _SHL, "card_error")
NOT_MYNA = _c(
    "002", "not_myna", "マイナンバーカード以外が置かれました",
    "マイナンバーカードではない（公的個人認証APがない）",
    "not a My Number card: the card has no JPKI application",
    "マイナンバーカードを置いてもらう。保険証など別のカードであれば受付窓口で確認する。",
    "Ask for the My Number card; other cards (old insurance cards) are checked at the counter.",
    _SHL, "card_error")
CERT_EXPIRED = _c(
    "006", "cert_expired", "電子証明書が失効しています",
    "利用者証明用電子証明書の失効・有効期限切れ（期限後3か月の猶予も過ぎた）",
    "the user-authentication certificate is revoked or expired, past the three-month grace period",
    "資格確認書や資格情報のお知らせなど別の方法で資格を確認する。市区町村窓口で証明書の更新を案内する。",
    "Confirm entitlement another way (資格確認書, 資格情報のお知らせ); send the patient to the city office to renew.",
    _SHL, "cert_expired")

# ---------------------------------------------------------------- 01x: proving who the patient is

WRONG_PIN = _c(
    "010", "wrong_pin", "暗証番号が違います",
    "暗証番号が違う（まだ残り回数がある）",
    "wrong PIN; tries are left",
    "患者ご本人に入力してもらう（職員は暗証番号を聞かない・入力しない）。残り1回では顔認証か目視確認を勧める。",
    "Let the patient retry (staff never ask for or type a PIN); with one try left, suggest face or staff check.",
    _SL, "pin_backoff")
PIN_LOCKED = _c(
    "011", "pin_locked", "暗証番号がロックされています",
    "暗証番号がロックされている（3回間違えた）",
    "the card's PIN is locked (three wrong PINs)",
    "顔認証か目視確認で受付する。ロック解除は市区町村窓口でのみ可能と案内する。",
    "Use face or staff visual check; the lock can only be reset at the city office.",
    _SHL, "pin_locked")
FACE_FAILED = _c(
    "012", "face_failed", "顔認証ができませんでした",
    "顔認証で本人と確認できなかった（規定回数失敗）",
    "face authentication did not match within the allowed attempts",
    "暗証番号か目視確認で受付する。逆光・マスク・帽子・眼鏡の反射を確認する。",
    "Use the PIN or staff visual check; look for backlight, masks, hats, glare on glasses.",
    _SHL, "face_failed")
NO_PIN = _c(
    "013", "no_pin", "このカードは暗証番号が設定されていません",
    "暗証番号のないカード（顔認証マイナンバーカード）に暗証番号の照合を求めた",
    "a PIN check was asked of a card without a PIN (face-authentication-only card)",
    "顔認証か目視確認で受付する。繰り返す場合はログを添えて保守へ連絡する。",
    "Use face or staff visual check; if it repeats, report to maintenance with the journal.",
    _SHL, "card_error")
PIN_THROTTLED = _c(
    "014", "pin_throttled", "暗証番号の入力を一時停止しています",
    "この装置で短時間に暗証番号の誤りが続いたため、暗証番号の入力を一時停止している",
    "too many wrong PINs on this reader in a short time; PIN entry is paused on the device",
    "待ち時間の後に再入力するか、顔認証・目視確認を使う。不審な連続入力がないか確認する。",
    "Wait for the pause to end or use face / staff check; look for someone trying PINs.",
    _SHL, "pin_throttled")
FACE_UNAVAILABLE = _c(
    "015", "photo_invalid", "カードの顔写真を読み取れませんでした",
    "顔認証を使えない（カードの顔写真を読めない・使えない、またはカメラが使えない）",
    "face authentication cannot be used: the card photo is unreadable or unusable, or the camera is not available",
    "暗証番号か目視確認で受付する。全員で起きる場合はカメラと顔認証モデルの状態を確認する。",
    "Use the PIN or staff visual check; if every patient gets it, check the camera and the face models.",
    _SHL, "face_failed")
CARD_FACE_UNREADABLE = _c(
    "016", "card_face_unreadable", "券面を読めないため顔認証不可",
    "券面（照合番号B）を読み取れず、顔認証を選択肢に出さなかった",
    "the printed card face (照合番号B) could not be read, so face authentication was not offered",
    "暗証番号か目視確認で受付する。券面カメラの汚れ・照明・カードの置き方を確認する。",
    "Use the PIN or staff check; check the card-face camera (dirt, light) and how the card lies.",
    _SL, "method_choice")
CODE_B_LOCKED = _c(
    "017", "code_b_locked", "照合番号ロックのため顔認証不可",
    "照合番号Bがロックされているため顔写真を読めない",
    "照合番号B is locked on this card, so its face photo cannot be opened",
    "暗証番号か目視確認で受付する。解除は市区町村窓口で行う。",
    "Use the PIN or staff check; the city office resets 照合番号B.",
    _SL, "method_choice")
CODE_B_RESERVE = _c(
    "018", "code_b_reserve", "照合番号の残りが少なく顔認証不可",
    "照合番号Bの残り回数が少ないため、試行を使わず顔認証を出さなかった",
    "照合番号B has too few tries left; the reader keeps them and does not offer face authentication",
    "暗証番号か目視確認で受付する。市区町村窓口での確認を案内する。",
    "Use the PIN or staff check; the patient may ask the city office to reset the counter.",
    _SL, "method_choice")
CODE_B_WRONG = _c(
    "019", "code_b_wrong", "カードの券面を正しく読み取れませんでした",
    "券面から読んだ照合番号Bをカードが受け付けなかった（読み誤り・かすれ）",
    "the card refused the 照合番号B read from its face (misread or worn print)",
    "暗証番号か目視確認で受付する。同じカードで続く場合は券面の汚れ・傷を確認する。",
    "Use the PIN or staff check; if it repeats with one card, look at the card's print.",
    (LOG,))

# ---------------------------------------------------------------- 02x: the clinic host

HOST_UNREACHABLE = _c(
    "020", "host_unreachable", "資格確認端末と通信できませんでした",
    "資格確認端末から時間内に応答がない（接続断・端末停止）",
    "the clinic host did not answer in time (link down or host stopped)",
    "資格確認端末の電源・ケーブル（USB/シリアル）・ネットワークを確認し、再度カードを置いてもらう。",
    "Check the host PC, the cable (USB/serial) or network link; ask the patient to place the card again.",
    _SHL, "host_error")
QUALIFICATION_FAILED = _c(
    "021", "qualification_failed", "資格情報を確認できませんでした",
    "資格確認端末が資格を確認できなかった（該当する資格なし）",
    "the host could not confirm the patient's insurance entitlement (no record found)",
    "資格確認書・資格情報のお知らせ等で資格を確認する。資格確認端末の画面で理由を確認する。",
    "Confirm entitlement with other documents; read the reason on the host's screen.",
    _SHL, "host_error")
NOT_REGISTERED = _c(
    "022", "not_registered", "利用登録をしなかったため受付を終了しました",
    "保険証利用登録がなく、患者がその場での登録を選ばなかった",
    "the card is not registered for health insurance use and the patient declined to register",
    "保険証利用登録を案内するか、資格確認書等で受付する。",
    "Offer registration again or confirm entitlement with other documents.",
    _SHL, "cancelled")
HOST_SIGNATURE_REJECTED = _c(
    "023", "host_signature_rejected", "本人確認ができませんでした",
    "資格確認端末が暗証番号による署名を検証できなかった",
    "the host could not verify the card's signature made after the PIN",
    "もう一度カードを置いてもらう。続く場合は装置とホストの鍵・証明書設定を保守へ確認する。",
    "Ask the patient to try again; if it repeats, have maintenance check the reader and host setup.",
    _SHL, "host_error")
HOST_CERT_REJECTED = _c(
    "024", "host_cert_rejected", "電子証明書を確認できませんでした",
    "資格確認端末が電子証明書を受け付けなかった（発行元不明・失効・猶予期間切れ）",
    "the host refused the certificate (unknown issuer, revoked, or past the grace period)",
    "資格確認書等で受付する。市区町村窓口で証明書の確認・更新を案内する。",
    "Confirm entitlement another way; send the patient to the city office about the certificate.",
    _SHL, "host_error")
HOST_UNKNOWN_VISIT = _c(
    "025", "host_unknown_visit", "受付情報を確認できませんでした",
    "資格確認端末が受付の開始を知らない（通信の途中断・端末の再起動）",
    "the host does not know the visit (link interrupted or host restarted mid-visit)",
    "もう一度カードを置いてもらう。続く場合は資格確認端末との接続を確認する。",
    "Ask the patient to place the card again; if it repeats, check the host link.",
    _SHL, "host_error")

# ---------------------------------------------------------------- 03x: the visit ended early

CANCELLED = _c(
    "030", "cancelled", "受付を終了しました",
    "患者が「終了する」を選んだ",
    "the patient chose to end the visit",
    "必要なら受付窓口で用件を確認する。対処は不要。",
    "Nothing to fix; ask the patient at the counter if needed.",
    _SHL, "cancelled")
SCREEN_TIMEOUT = _c(
    "031", "timeout", "一定時間操作がなかったため、受付を終了しました",
    "画面で一定時間操作がなかった",
    "no key was pressed on a screen within the screen timeout",
    "操作に迷っていないか声をかけ、もう一度カードを置いてもらう。",
    "Offer help at the reader; ask the patient to place the card again.",
    _SHL, "cancelled")
CARD_REMOVED = _c(
    "032", "card_removed", "カードが取り出されたため、受付を終了しました",
    "受付の途中で患者がカードを取り出した",
    "the patient took the card off the reader during the visit",
    "受付を続けるなら、もう一度カードを置いてもらう。",
    "To continue, ask the patient to place the card again.",
    _HL)
STAFF_REJECTED = _c(
    "033", "staff_rejected", "職員による本人確認ができませんでした",
    "目視確認で職員が「確認できない」を選んだ",
    "at the staff visual check, staff chose 「確認できない」 (could not confirm)",
    "本人確認書類等で確認する。",
    "Confirm identity by other documents.",
    _SHL, "cancelled")
READER_RESTARTED = _c(
    "034", "reader_restarted", "カードリーダーが再起動しました",
    "受付の途中でカードリーダーが再起動した（停電・強制終了・ウォッチドッグ）",
    "the reader restarted during a visit (power cut, kill, watchdog); it closes that visit when it starts again",
    "もう一度カードを置いてもらう。繰り返す場合はジャーナルを保存して保守へ連絡する。",
    "Ask the patient to place the card again; if it repeats, save the journal and call maintenance.",
    _HL)
CHALLENGE_CONFLICT = _c(
    "035", "challenge_conflict", "資格確認端末との通信に問題が発生しました",
    "同じ受付に資格確認端末から異なるチャレンジが2回届いた（回線上の別の送信者の疑い）",
    "two different challenges arrived for the same visit: someone else may be on the host link",
    "もう一度カードを置いてもらう。続く場合は回線・接続機器を保守へ確認する。",
    "Ask the patient to try again; if it repeats, have maintenance inspect the host link and what is on it.",
    _SHL, "host_error")
STAFF_PASSWORD_NOT_SET = _c(
    "036", "staff_password_not_set", "職員用パスワードが未設定のため目視確認は使えません",
    "職員用パスワードが設定されていないため目視確認を使えない",
    "no staff password is set on this reader, so the staff visual check cannot be used",
    "管理者が mynactl staff-password で職員用パスワードを設定する。",
    "An administrator sets one with `mynactl staff-password`.",
    _SHL, "visual_check")
STAFF_PASSWORD_WRONG = _c(
    "037", "staff_password_wrong", "職員用パスワードが違います",
    "目視確認の職員用パスワードを3回間違えた",
    "the staff password was wrong three times at the visual check",
    "正しいパスワードを確認する。心当たりがなければ管理者へ報告する。",
    "Check the password; report to the administrator if nobody on staff typed it.",
    _SHL, "cancelled")
STAFF_PASSWORD_LOCKED = _c(
    "038", "staff_password_locked", "職員用パスワードの入力を一時停止しています",
    "職員用パスワードの誤りが続いたため、装置全体で入力を一時停止している",
    "staff password entry is paused on the whole device after repeated wrong passwords",
    "停止が解けるまで待つ。その間は顔認証か暗証番号で受付する。",
    "Wait for the pause to end; meanwhile patients use face or PIN.",
    _SHL, "visual_check")

# ---------------------------------------------------------------- 04x: the reader's storage

STORAGE_FULL = _c(
    "040", "storage_full", "記録領域がいっぱいで受付できません",
    "受付結果を記録できない（記憶領域の空き不足・書き込みエラー）。新しい受付は止まる",
    "results cannot be stored (disk full or write error); new visits are refused until space returns",
    "保守へ連絡する。空きができれば自動で復旧し、保留中の結果は送信される。",
    "Call maintenance; the reader recovers by itself once space returns and sends what it owes.",
    _SHL, "fault")

# ---------------------------------------------------------------- 05x: talking to the card

CARD_REMOVED_MID_COMMAND = _c(
    "050", "removed", "カードが取り出されました",
    "カードとの通信の途中でカードが離れた",
    "the card left the reader during a command",
    "カードを動かさないよう案内し、もう一度置いてもらう。",
    "Ask the patient not to move the card, and to place it again.",
    _SHL, "card_error")
BAD_RESPONSE = _c(
    "051", "bad_response", "カードを正しく読み取れませんでした",
    "カードの応答が壊れている（長さ・形式が不正）",
    "the card's answer was malformed (length or format)",
    "置き直して再試行する。同じカードで続く場合はカードの不良を疑い、市区町村窓口を案内する。",
    "Re-seat and retry; if one card keeps failing, suspect the card and refer to the city office.",
    _SHL, "card_error")
CERT_UNREADABLE = _c(
    "052", "cert_invalid", "電子証明書を読み取れませんでした",
    "カードの利用者証明用電子証明書を読めない・形式が不正",
    "the user-authentication certificate on the card is unreadable or not valid X.509",
    "置き直して再試行する。続く場合は資格確認書等で受付し、市区町村窓口を案内する。",
    "Re-seat and retry; if it persists, confirm entitlement another way and refer to the city office.",
    _SHL, "card_error")
SECURITY_NOT_SATISFIED = _c(
    "053", "security", "カードの安全確認ができませんでした",
    "カードが操作を拒否した（セキュリティ条件を満たさない）",
    "the card refused a command: security status not satisfied",
    "もう一度カードを置いてもらう。繰り返す場合はジャーナルを添えて保守へ連絡する。",
    "Ask for the card again; if it repeats, call maintenance with the journal.",
    _SHL, "card_error")
FILE_NOT_FOUND = _c(
    "054", "not_found", "カードに必要な情報が見つかりません",
    "受付に必要なファイルがカードにない",
    "a file the visit needs is not on the card",
    "資格確認書等で受付する。同じカードで続く場合は市区町村窓口を案内する。",
    "Confirm entitlement another way; if one card keeps failing, refer to the city office.",
    _SHL, "card_error")
CARD_UNEXPECTED = _c(
    "059", "unexpected", "読み取りに失敗しました",
    "カードまたはドライバが想定外の応答・エラーを返した",
    "the card or the driver answered with something unexpected",
    "置き直して再試行する。繰り返す場合はジャーナルを保存して保守へ連絡する。",
    "Re-seat and retry; if it repeats, save the journal and call maintenance.",
    _SHL, "card_error")

# ---------------------------------------------------------------- 09x: the reader device

READER_LOST = _c(
    "090", "reader", "カードリーダーの不具合です",
    "カード読み取り部が見えなくなった（USB抜け・故障）",
    "the card reader unit disappeared (unplugged or failed)",
    "カード読み取り部のUSBケーブルを確認する。戻らなければ装置を再起動し、保守へ連絡する。",
    "Check the card unit's USB cable; if it does not come back, restart the reader and call maintenance.",
    _SHL, "card_error")
PCSCD_DOWN = _c(
    "091", "pcscd_down", "カードリーダーの制御が停止しています",
    "スマートカードサービス（pcscd）が停止した",
    "the smart-card service (pcscd) stopped",
    "通常は自動で再接続する。戻らなければ装置を再起動し、保守へ連絡する。",
    "It normally reconnects by itself; if not, restart the reader and call maintenance.",
    _HL)

CODES: tuple[ReaderCode, ...] = tuple(_ALL)
del _ALL

# Abort reasons that name a family, not a cause: the code sent with them is the cause's
# (``visit.aborted`` reason ``card_error`` carries the card error's own code).
FAMILY_REASONS: dict[str, str] = {
    "card_error": "the visit ended on a card or authentication failure; the code names which",
}

FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("00", "実機と同じ番号", "codes certified readers show"),
    ("01", "本人確認（暗証番号・顔認証・照合番号B）", "proving identity (PIN, face, 照合番号B)"),
    ("02", "資格確認端末", "the clinic host"),
    ("03", "受付の中断", "the visit ended early"),
    ("04", "記録", "storage"),
    ("05", "カードとの通信", "talking to the card"),
    ("09", "カードリーダー装置", "the card reader device"),
)

_BY_CODE: dict[str, ReaderCode] = {}
_BY_REASON: dict[str, ReaderCode] = {}
for _e in CODES:
    if _e.code in _BY_CODE:
        raise ValueError(f"reader code {_e.code} is used twice")
    if _e.reason in _BY_REASON or _e.reason in FAMILY_REASONS:
        raise ValueError(f"reason {_e.reason!r} is used twice")
    _BY_CODE[_e.code] = _e
    _BY_REASON[_e.reason] = _e
del _e


def reason_key(reason: object) -> str:
    """The key part of a reason: 'unexpected: KeyError' -> 'unexpected'."""
    return str(reason or "").split(":", 1)[0].strip()


def by_code(code: object) -> ReaderCode | None:
    return _BY_CODE.get(str(code or ""))


def by_reason(reason: object) -> ReaderCode | None:
    return _BY_REASON.get(reason_key(reason))


def code_for(reason: object) -> str:
    """The code of a reason key; ``KeyError`` names a reason missing from the table."""
    entry = by_reason(reason)
    if entry is None:
        raise KeyError(f"reason {reason!r} has no reader code")
    return entry.code


def patient_texts() -> dict[str, str]:
    """reason -> the Japanese sentence the panel shows for it (ui.texts.ERRORS)."""
    return {e.reason: e.patient for e in CODES}


def screen_params(entry: ReaderCode) -> dict[str, object]:
    """Parameters of ``entry.screen`` as the flow shows that cause (choices and seconds are
    examples). The gallery draws one screen per code from these; tests hold the flow to them."""
    s = entry.screen
    if s == "method_choice":  # the cause is a note under the choices; no code on this screen
        return {"choices": ("pin", "proxy", "staff"), "note": entry.reason}
    params: dict[str, object] = {"code": entry.code}
    if s in ("card_error", "fault", "host_error"):
        params["reason"] = entry.reason
    elif s == "cancelled":
        params["reason"] = "timeout" if entry is SCREEN_TIMEOUT else "user"
    elif s == "pin_locked":
        params["choices"] = ("face", "staff")
    elif s == "face_failed":
        params.update(choices=("pin", "staff"), attempts_left=0)
    elif s == "pin_backoff":
        params["seconds"] = 3
    elif s == "pin_throttled":
        params["seconds"] = 300
    elif s == "visual_check":
        params["stage"] = "not_set" if entry is STAFF_PASSWORD_NOT_SET else "locked"
    return params


# ---------------------------------------------------------------- the staff sheet

_SEEN_JA = {SCREEN: "画面", HOST: "ホスト", LOG: "ログ"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    """docs/error-codes.md: the sheet for staff and technicians, generated from CODES."""
    out = [
        "# Reader error codes / エラーコード一覧",
        "",
        "<!-- Generated by `python -m mynad.core.codes --markdown > docs/error-codes.md`."
        " Do not edit by hand: edit daemon/mynad/core/codes.py. -->",
        "",
        "When the reader cannot finish a visit it shows a three-digit code under its message and sends",
        "the same code to the clinic host (`visit.aborted` / `reader.event`, docs/host-protocol.md).",
        "One code means one cause. 001, 002 and 006 mean what they mean on certified readers.",
        "受付が完了しないとき、画面のメッセージの下に3桁のコードが表示され、同じコードが資格確認端末にも送られます。",
        "コードを控えてから、下の「対処」に従ってください。",
        "",
        "Seen on: 画面 = the reader's panel, ホスト = messages to the clinic host, ログ = the reader's journal.",
        "Codes 021, 023, 024, 025 come from the clinic host and are shown as the host sent them; a host",
        "may send other codes of its own, which the panel shows under 「資格情報を確認できませんでした」.",
        "",
    ]
    for prefix, title_ja, title_en in FAMILIES:
        rows = [e for e in CODES if e.code.startswith(prefix)]
        if not rows:
            continue
        out += [f"## {prefix}x — {title_ja} / {title_en}", "",
                "| code | 画面の表示 (patient sees) | 意味 | meaning | 対処 | what to do | seen on |",
                "|---|---|---|---|---|---|---|"]
        for e in rows:
            seen = "・".join(_SEEN_JA[s] for s in e.seen)
            if e.screen == "method_choice":  # a note under the choices, without the code
                seen = seen.replace(_SEEN_JA[SCREEN], "画面（注記のみ）")
            out.append(f"| **{e.code}** | {_cell(e.patient)} | {_cell(e.meaning_ja)} | {_cell(e.meaning_en)} | "
                       f"{_cell(e.action_ja)} | {_cell(e.action_en)} | {seen} |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["--markdown"]:
        print("usage: python -m mynad.core.codes --markdown", file=sys.stderr)
        return 2
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
