"""Virtual card profiles: the people on the simulated My Number cards.

``load_profiles()`` reads ``profiles.toml`` (next to this module by default).
Relative certificate validity (``cert_days_left``) is resolved against *today*
at load time, so "expires in 30 days" stays true every day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROFILES_TOML = Path(__file__).resolve().parent / "profiles.toml"

# Certificates are valid for 5 years after issuance (JPKI 利用者証明用: 5 birthdays), used when only
# cert_days_left / cert_not_after is given.
CERT_LIFETIME_DAYS = 5 * 365

REIWA_START = dt.date(2019, 5, 1)
HEISEI_START = dt.date(1989, 1, 8)
SHOWA_START = dt.date(1926, 12, 25)


def era_yymmdd(d: dt.date) -> str:
    """Japanese-era YYMMDD (令和 from 2019-05-01, 平成 1989-01-08..2019-04-30, 昭和 before)."""
    if d >= REIWA_START:
        year = d.year - 2018
    elif d >= HEISEI_START:
        year = d.year - 1988
    elif d >= SHOWA_START:
        year = d.year - 1925
    else:
        raise ValueError(f"birth date {d} is before 昭和 (not modelled)")
    return f"{year:02d}{d.month:02d}{d.day:02d}"


def age_on(birth: dt.date, today: dt.date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def my_number_check_digit(first11: str) -> int:
    """Check digit of the 個人番号 (総務省令 第5条): P_n digits from the right, Q_n = n+1 (n<=6) else n-5."""
    total = 0
    for n in range(1, 12):
        p = int(first11[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    r = total % 11
    return 0 if r <= 1 else 11 - r


def derive_my_number(key: str) -> str:
    h = int.from_bytes(hashlib.sha256(f"mynasim-my-number:{key}".encode()).digest()[:8], "big")
    first11 = f"{h % 10**11:011d}"
    if first11[0] == "0":
        first11 = "1" + first11[1:]
    return first11 + str(my_number_check_digit(first11))


@dataclass
class Profile:
    key: str
    name: str
    kana: str
    birth_date: dt.date
    sex: str
    address: str
    pin: str | None
    cert_not_before: dt.date
    cert_not_after: dt.date
    photo: str
    registered: bool
    security_code: str
    card_expiry_year: int
    pin_tries: int = 3
    my_number: str = ""
    card_kind: str = "japanese"  # printed face: japanese (和暦) | foreign (西暦) | next_gen (西暦)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.my_number:
            self.my_number = derive_my_number(self.key)

    @property
    def has_pin(self) -> bool:
        return self.pin is not None

    def code_b(self) -> str:
        """照合番号B: era YYMMDD of birth + card expiry year (4) + security code (4) = 14 digits."""
        return f"{era_yymmdd(self.birth_date)}{self.card_expiry_year:04d}{self.security_code}"

    def age(self, today: dt.date | None = None) -> int:
        return age_on(self.birth_date, today or dt.date.today())

    def cert_days_left(self, today: dt.date | None = None) -> int:
        return (self.cert_not_after - (today or dt.date.today())).days

    def as_patient(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "name_kana": self.kana,
            "birth_date": self.birth_date.isoformat(),
            "age": self.age(),
            "sex": self.sex,
            "registered": self.registered,
        }


def _as_date(v: Any, what: str) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        return dt.date.fromisoformat(v)
    raise ValueError(f"{what}: expected a date, got {v!r}")


def profile_from_dict(key: str, d: dict[str, Any], today: dt.date | None = None) -> Profile:
    today = today or dt.date.today()
    known = {"name", "kana", "birth_date", "sex", "address", "pin", "pin_tries", "cert_days_left",
             "cert_not_before", "cert_not_after", "photo", "registered", "security_code", "card_expiry_year",
             "my_number", "card_kind"}
    if "cert_days_left" in d:
        not_after = today + dt.timedelta(days=int(d["cert_days_left"]))
    elif "cert_not_after" in d:
        not_after = _as_date(d["cert_not_after"], f"{key}.cert_not_after")
    else:
        not_after = today + dt.timedelta(days=1000)
    if "cert_not_before" in d:
        not_before = _as_date(d["cert_not_before"], f"{key}.cert_not_before")
    else:
        not_before = not_after - dt.timedelta(days=CERT_LIFETIME_DAYS)
    pin = d.get("pin")
    pin = str(pin) if pin not in (None, "") else None
    if pin is not None and not (len(pin) == 4 and pin.isdigit()):
        raise ValueError(f"{key}.pin must be 4 digits, got {pin!r}")
    sex = str(d.get("sex", "9"))
    sc = str(d.get("security_code", "0000"))
    if not (len(sc) == 4 and sc.isdigit()):
        raise ValueError(f"{key}.security_code must be 4 digits")
    pin_tries = int(d.get("pin_tries", 3))
    card_kind = str(d.get("card_kind", "japanese"))
    if card_kind not in ("japanese", "foreign", "next_gen"):
        raise ValueError(f"{key}.card_kind must be japanese, foreign or next_gen")
    if not 0 <= pin_tries <= 3:
        raise ValueError(f"{key}.pin_tries must be 0..3")
    return Profile(
        key=key,
        name=str(d["name"]),
        kana=str(d.get("kana", "")),
        birth_date=_as_date(d["birth_date"], f"{key}.birth_date"),
        sex=sex,
        address=str(d.get("address", "")),
        pin=pin,
        pin_tries=pin_tries,
        cert_not_before=not_before,
        cert_not_after=not_after,
        photo=str(d.get("photo", "")),
        registered=bool(d.get("registered", True)),
        security_code=sc,
        card_expiry_year=int(d.get("card_expiry_year", today.year + 5)),
        my_number=str(d.get("my_number", "")),
        card_kind=card_kind,
        extra={k: v for k, v in d.items() if k not in known},
    )


def load_profiles(path: Path | str | None = None, today: dt.date | None = None) -> dict[str, Profile]:
    p = Path(path) if path else PROFILES_TOML
    data = tomllib.loads(p.read_text(encoding="utf-8"))
    return {key: profile_from_dict(key, d, today) for key, d in data.items() if isinstance(d, dict)}
