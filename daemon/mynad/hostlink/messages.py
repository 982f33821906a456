"""Host-link messages: envelope, field rules and validation (pure).

Every message is a JSON object with ``v`` (message format version, now 1), ``id``
(unique string, chosen by the sender), ``type`` and ``ts`` (ISO 8601 time with
offset). ``validate(msg)`` returns ``None`` when the message can be used, else one
plain sentence saying why not; the link refuses such a message with a NAK and the
daemon logs the sentence. Images, PINs and the individual number are never carried:
``validate`` refuses any field whose name suggests them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Any, Callable

MESSAGE_VERSION = 1
MAX_ID_LEN = 64  # characters of a message id (the reader's are 32); longer ones are refused

READER_TO_HOST = frozenset({
    "hello", "visit.started", "visit.authenticated", "visit.registration", "visit.result", "visit.aborted",
    "reader.event",
})
HOST_TO_READER = frozenset({"hello", "visit.challenge", "visit.qualification", "staff.visual_check"})

CONSENT_FLAGS = ("OperationInfoConsFlg", "DiagnosisInfoConsFlg", "PharmacistsInfoConsFlg",
                 "SpecificHealthCheckupsInfoConsFlg", "ComprehensiveConsFlg",
                 "LimitApplicationCertificateRelatedConsFlg")
# consent item (as the reader shows it) -> OQS flags it sets; host keys in previous_consents
CONSENT_ITEM_FLAGS: dict[str, tuple[str, ...]] = {
    "surgery": ("OperationInfoConsFlg",),
    "care_medicine": ("DiagnosisInfoConsFlg", "PharmacistsInfoConsFlg"),
    "checkup": ("SpecificHealthCheckupsInfoConsFlg",),
    "comprehensive": ("ComprehensiveConsFlg",),
    "limit": ("LimitApplicationCertificateRelatedConsFlg",),
}
METHODS = ("pin", "face", "visual")
# field names that would mean a secret or biometric slipped into a message
FORBIDDEN_FIELDS = frozenset({"pin", "image", "photo", "face_image", "jpeg", "png", "my_number", "mynumber",
                              "individual_number", "kojin_bango"})


class MessageError(ValueError):
    """A message cannot be built; the text says which field and why."""


def new_id() -> str:
    return uuid.uuid4().hex


def now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


def envelope(msg: dict[str, Any]) -> dict[str, Any]:
    """Add ``v``, ``id`` and ``ts`` (keeping ones already present)."""
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise MessageError("a message must be a dict with a string 'type'")
    out = {"v": MESSAGE_VERSION, "id": new_id(), "type": msg["type"], "ts": now_iso()}
    out.update({k: v for k, v in msg.items() if k != "type"})
    out.setdefault("v", MESSAGE_VERSION)
    return out


# ---------------------------------------------------------------- field checks

Check = Callable[[Any], bool]


def _str(x: Any) -> bool:
    return isinstance(x, str) and x != ""


def _opt_str(x: Any) -> bool:
    return x is None or isinstance(x, str)


def _bool(x: Any) -> bool:
    return isinstance(x, bool)


def _b64(nbytes: int | None = None) -> Check:
    def check(x: Any) -> bool:
        if not isinstance(x, str):
            return False
        try:
            raw = base64.b64decode(x, validate=True)
        except (binascii.Error, ValueError):
            return False
        return nbytes is None or len(raw) == nbytes
    return check


def _decimal(x: Any) -> bool:
    return isinstance(x, str) and x.isdigit()


def _date(x: Any) -> bool:
    if not isinstance(x, str):
        return False
    try:
        dt.date.fromisoformat(x[:10])
        return True
    except ValueError:
        return False


def _one_of(*values: Any) -> Check:
    return lambda x: x in values and type(x) in {type(v) for v in values}


def _cons_time(x: Any) -> bool:
    if not (isinstance(x, str) and len(x) == 14 and x.isdigit()):
        return False
    try:
        dt.datetime.strptime(x, "%Y%m%d%H%M%S")
        return True
    except ValueError:
        return False


def _consents(x: Any) -> bool:
    return isinstance(x, dict) and all(k in CONSENT_FLAGS and v in ("0", "1") for k, v in x.items())


def _previous(x: Any) -> bool:
    return x is None or (isinstance(x, dict) and all(k in CONSENT_ITEM_FLAGS and isinstance(v, bool)
                                                     for k, v in x.items()))


def _error(x: Any) -> bool:
    return x is None or (isinstance(x, dict) and _str(x.get("code")) and isinstance(x.get("message", ""), str))


def _int_or_none(x: Any) -> bool:
    return x is None or (isinstance(x, int) and not isinstance(x, bool))


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# type -> {field: check}; fields marked "?" are optional.
SCHEMAS: dict[str, dict[str, Check]] = {
    "hello": {"role?": _str, "reader_id?": _str, "version?": _str, "reply?": _bool},
    "visit.started": {"visit_id": _str, "cert_state": _one_of("valid", "expiring", "grace", "expired"),
                      "cert_der": _b64(), "cert_serial": _decimal, "cert_not_after": _date},
    "visit.authenticated": {"visit_id": _str, "method": _one_of(*METHODS), "proxy": _bool,
                            "signature?": _b64(), "face_score?": lambda x: x is None or _number(x)},
    "visit.registration": {"visit_id": _str},
    "visit.result": {"visit_id": _str, "ProcessingResultStatus": _one_of(1, 2), "method": _one_of(*METHODS),
                     "proxy": _bool, "cert_state?": _opt_str, "qualification_only": _bool,
                     "consents": _consents, "ConsTime": _cons_time},
    "visit.aborted": {"visit_id": _str, "reason": _str, "code": _opt_str},
    "reader.event": {"kind": _str, "code": _opt_str, "message": _opt_str},
    "visit.challenge": {"visit_id": _str, "nonce": _b64(32)},
    "visit.qualification": {"visit_id": _str, "ok": _bool, "name?": _opt_str, "name_kana?": _opt_str,
                            "age?": _int_or_none, "registered?": _bool, "previous_consents?": _previous,
                            "error?": _error},
    "staff.visual_check": {"reason?": _opt_str},
}


def validate(msg: Any, allowed: frozenset[str] | None = None) -> str | None:
    """None if ``msg`` is a usable message (of a type in ``allowed``), else why not."""
    if not isinstance(msg, dict):
        return "the message is not a JSON object"
    mtype = msg.get("type")
    if not isinstance(mtype, str):
        return "the message has no type"
    if mtype not in SCHEMAS:  # checked first so an unknown (maybe huge) type is never echoed whole
        return f"unknown message type {_short(mtype)}"
    v = msg.get("v")
    if v != MESSAGE_VERSION:
        return f"{mtype}: message version {_short(v)} is not supported (this reader speaks version {MESSAGE_VERSION})"
    if not _str(msg.get("id")):
        return f"{mtype}: the message has no id"
    if len(msg["id"]) > MAX_ID_LEN:
        return f"{mtype}: the message id is longer than {MAX_ID_LEN} characters"
    if not isinstance(msg.get("ts"), str):
        return f"{mtype}: the message has no time stamp (ts)"
    schema = SCHEMAS.get(mtype)
    if schema is None or (allowed is not None and mtype not in allowed):
        return f"unknown message type {mtype!r}"
    bad = FORBIDDEN_FIELDS & {k.lower() for k in msg}
    if bad:
        return f"{mtype}: field(s) {', '.join(sorted(bad))} must never be sent"
    for key, check in schema.items():
        name = key.rstrip("?")
        if name not in msg:
            if key.endswith("?"):
                continue
            return f"{mtype}: the field {name} is missing"
        if not check(msg[name]):
            return f"{mtype}: the field {name} has a bad value {_short(msg[name])}"
    if mtype == "visit.authenticated":
        if msg["method"] == "pin" and "signature" not in msg:
            return "visit.authenticated: a PIN authentication needs a signature"
    return None


def _short(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 40 else r[:37] + "..."


def build(type_: str, **fields: Any) -> dict[str, Any]:
    """A complete, validated message (raises MessageError)."""
    msg = envelope({"type": type_, **fields})
    why = validate(msg)
    if why:
        raise MessageError(why)
    return msg


# ---------------------------------------------------------------- constructors (reader -> host)

def hello(reader_id: str, version: str, role: str = "reader") -> dict[str, Any]:
    return build("hello", role=role, reader_id=reader_id, version=version)


def visit_started(visit_id: str, cert_state: str, cert_der: bytes, cert_serial: int, cert_not_after: dt.date) -> dict:
    return build("visit.started", visit_id=visit_id, cert_state=cert_state,
                 cert_der=base64.b64encode(cert_der).decode(), cert_serial=str(cert_serial),
                 cert_not_after=cert_not_after.isoformat())


def visit_authenticated(visit_id: str, method: str, proxy: bool = False, *, signature: bytes | None = None,
                        face_score: float | None = None) -> dict:
    extra: dict[str, Any] = {}
    if signature is not None:
        extra["signature"] = base64.b64encode(signature).decode()
    if face_score is not None:
        extra["face_score"] = face_score
    return build("visit.authenticated", visit_id=visit_id, method=method, proxy=proxy, **extra)


def visit_result(visit_id: str, *, method: str, proxy: bool, cert_state: str | None, qualification_only: bool,
                 consents: dict[str, str], cons_time: str, status: int = 1) -> dict:
    return build("visit.result", visit_id=visit_id, ProcessingResultStatus=status, method=method, proxy=proxy,
                 cert_state=cert_state, qualification_only=qualification_only, consents=consents,
                 ConsTime=cons_time)


# ---------------------------------------------------------------- constructors (host -> reader)

def visit_challenge(visit_id: str, nonce: bytes) -> dict:
    return build("visit.challenge", visit_id=visit_id, nonce=base64.b64encode(nonce).decode())


def visit_qualification(visit_id: str, ok: bool, *, name: str | None = None, name_kana: str | None = None,
                        age: int | None = None, registered: bool = True,
                        previous_consents: dict[str, bool] | None = None,
                        error: dict[str, str] | None = None) -> dict:
    return build("visit.qualification", visit_id=visit_id, ok=ok, name=name, name_kana=name_kana, age=age,
                 registered=registered, previous_consents=previous_consents, error=error)


def staff_visual_check(reason: str = "") -> dict:
    return build("staff.visual_check", reason=reason)


def consents_to_items(flags: dict[str, str]) -> dict[str, bool]:
    """OQS flags of a visit.result -> previous_consents items (an item needs all its flags "1")."""
    out: dict[str, bool] = {}
    for item, names in CONSENT_ITEM_FLAGS.items():
        present = [flags[n] for n in names if n in flags]
        if present:
            out[item] = all(v == "1" for v in present)
    return out
