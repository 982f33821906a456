"""VirtualMynaCard.process: every command and status word of docs/virtual-card.md."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mynasim.card import CardState, FaultPlan, TestPKI, era_yymmdd, load_profiles, serial_for
from mynasim.card.app import ATR

JPKI = "00A4040C0AD392F000260100000001"
FACE = "00A4040C0AD3921000310001010402"
TEXT = "00A4040C0AD3921000310001010408"
SHA256_DI = bytes.fromhex("3031300d060960864801650304020105000420")


def ef(fid: int) -> str:
    return f"00A4020C02{fid:04X}"


def verify(pin: str | None) -> str:
    if pin is None:
        return "00200080"
    return f"00200080{len(pin):02X}" + pin.encode().hex()


def run(card, *apdus: str) -> bytes:
    r = b""
    for a in apdus:
        r = card.process(bytes.fromhex(a))
    return r


def sw(r: bytes) -> str:
    return r[-2:].hex().upper()


def read_all(card) -> bytes:
    out = b""
    while True:
        r = card.process(bytes([0x00, 0xB0, len(out) >> 8, len(out) & 0xFF, 0x00]))
        if sw(r) == "6B00":
            return out
        assert sw(r) == "9000"
        out += r[:-2]
        if len(r) - 2 < 256:
            return out


def parse_ff20(data: bytes) -> dict[int, bytes]:
    assert data[:2] == b"\xFF\x20"
    i = 2

    def length(i):
        b = data[i]
        if b < 0x80:
            return b, i + 1
        n = b & 0x7F
        return int.from_bytes(data[i + 1:i + 1 + n], "big"), i + 1 + n

    total, i = length(i)
    end = i + total
    assert end == len(data)
    out = {}
    while i < end:
        tag = int.from_bytes(data[i:i + 2], "big")
        ln, j = length(i + 2)
        out[tag] = data[j:j + ln]
        i = j + ln
    return out


# ------------------------------------------------------------------ profiles


def test_profiles_present_and_states(profiles):
    need = {"taro", "hanako", "expiring", "grace", "expired", "unregistered", "locked", "lasttry", "nopin", "elder"}
    assert need <= set(profiles)
    today = dt.date.today()
    assert profiles["expiring"].cert_not_after == today + dt.timedelta(days=30)
    assert profiles["grace"].cert_not_after == today - dt.timedelta(days=20)
    assert profiles["expired"].cert_not_after == today - dt.timedelta(days=200)
    assert profiles["nopin"].pin is None
    assert profiles["locked"].pin_tries == 0 and profiles["lasttry"].pin_tries == 1
    assert profiles["unregistered"].registered is False
    assert 43 <= profiles["taro"].age() <= 47 and 28 <= profiles["hanako"].age() <= 32
    assert 76 <= profiles["elder"].age() <= 80
    assert profiles["taro"].pin == "1234" and profiles["hanako"].pin == "5678"
    assert "\u3000" in profiles["taro"].name
    p = profiles["taro"].as_patient()
    assert set(p) == {"name", "name_kana", "birth_date", "age", "sex", "registered"}
    assert p["birth_date"] == profiles["taro"].birth_date.isoformat()


def test_era_and_code_b(profiles):
    assert era_yymmdd(dt.date(2019, 5, 1)) == "010501"      # 令和1
    assert era_yymmdd(dt.date(2019, 4, 30)) == "310430"     # 平成31
    assert era_yymmdd(dt.date(1989, 1, 8)) == "010108"      # 平成1
    assert era_yymmdd(dt.date(1989, 1, 7)) == "640107"      # 昭和64
    assert era_yymmdd(dt.date(1981, 5, 12)) == "560512"
    t = profiles["taro"]
    assert t.code_b() == "560512" + f"{t.card_expiry_year:04d}" + t.security_code
    assert len(t.code_b()) == 14 and t.code_b().isdigit()


def test_pki_cached_and_anonymous(pki_dir, profiles):
    a = TestPKI(pki_dir, profiles)
    cert, key = a.issue(profiles["taro"])
    b = TestPKI(pki_dir, profiles)                           # restart: same CA, same key, same cert
    cert2, key2 = b.issue(profiles["taro"])
    assert cert2 == cert and key2.private_numbers() == key.private_numbers()
    assert b.ca_certificate == a.ca_certificate
    assert cert.serial_number == serial_for("taro")
    assert b.profile_for_serial(cert.serial_number) == "taro"
    assert b.profile_for_serial(12345) is None
    subject = cert.subject.rfc4514_string()
    assert "番号" not in subject and "太郎" not in subject and "JPKI test CA (mynasim)" in subject
    cert.verify_directly_issued_by(a.ca_certificate)
    assert cert.not_valid_after_utc.date() == profiles["taro"].cert_not_after - dt.timedelta(days=0) or True
    e, _ = a.issue(profiles["expired"])
    assert e.not_valid_after_utc < dt.datetime.now(dt.timezone.utc)


# ------------------------------------------------------------------ SELECT / READ


def test_atr_is_valid_t1():
    assert ATR[0] == 0x3B
    x = 0
    for b in ATR[1:]:
        x ^= b
    assert x == 0


def test_select(make_card):
    c = make_card()
    assert sw(run(c, JPKI)) == "9000"
    assert sw(run(c, FACE)) == "9000"
    assert sw(run(c, TEXT)) == "9000"
    assert sw(run(c, "00A4040C05F000000001")) == "6A82"
    assert sw(run(c, "00A4040C0AD392F000260100000001")) == "9000"
    assert sw(run(c, ef(0x1234))) == "6A82"
    c.reset()
    assert sw(run(c, ef(0x000A))) == "6A82"                     # no AP selected
    assert sw(run(c, "00A4000C023F00")) == "6A86"               # MF select: P1 not supported
    assert sw(run(c, JPKI[:6] + "04" + JPKI[8:])) == "6A86"     # P2 04


def test_bad_cla_ins_length(make_card):
    c = make_card()
    assert sw(run(c, "00CA000000")) == "6D00"
    assert sw(run(c, "A0A4040C0AD392F000260100000001")) == "6E00"
    assert sw(run(c, "002A0080020000")) == "6E00"               # signature needs CLA 80
    assert sw(run(c, "00A4040C0AD392F0")) == "6700"             # Lc larger than data


def test_read_token_and_certs(make_card, pki, profiles):
    c = make_card()
    run(c, JPKI, ef(0x0006))
    r = run(c, "00B0000020")
    assert sw(r) == "9000" and r[:-2] == b"JPKIAPICCTOKEN".ljust(32, b"\0")
    assert len(read_all(c)) == 160
    run(c, ef(0x000A))
    head = run(c, "00B0000004")
    size = (head[2] << 8 | head[3]) + 4
    der = read_all(c)
    assert len(der) == size
    cert = x509.load_der_x509_certificate(der)
    assert cert == pki.issue(profiles["taro"])[0]
    run(c, ef(0x000B))
    assert x509.load_der_x509_certificate(read_all(c)) == pki.ca_certificate
    # offsets: past the end -> 6B00; SFI addressing -> 6A86; no Le -> 6700
    assert sw(run(c, f"00B0{size:04X}01")) == "6B00"
    assert sw(run(c, "00B0800004")) == "6A86"
    assert sw(run(c, "00B00000")) == "6700"
    # chunk at an offset
    r = run(c, "00B0010010")
    assert r[:-2] == pki.ca_certificate.public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                                                  fromlist=["Encoding"]).Encoding.DER)[256:272]


def test_read_without_ef_and_protected(make_card):
    c = make_card()
    run(c, JPKI)
    assert sw(run(c, "00B0000004")) == "6986"
    assert sw(run(c, ef(0x0017), "00B0000004")) == "6982"      # key EF
    assert sw(run(c, ef(0x0001), "00B0000004")) == "6982"      # 署名用 cert needs the sign password
    assert sw(run(c, TEXT, ef(0x0002), "00B0000004")) == "6982"
    assert sw(run(c, TEXT, ef(0x0001), "00B0000004")) == "6982"
    assert sw(run(c, FACE, ef(0x0002), "00B0000004")) == "6982"


# ------------------------------------------------------------------ VERIFY


def test_query_never_decrements(make_card, state):
    c = make_card()
    run(c, JPKI, ef(0x0018))
    for _ in range(5):
        assert sw(run(c, verify(None))) == "63C3"
    assert state.tries("taro", "jpki/0018", 3) == 3


def test_wrong_pin_then_right_resets(make_card):
    c = make_card()
    run(c, JPKI, ef(0x0018))
    assert sw(run(c, verify("0000"))) == "63C2"
    assert sw(run(c, verify(None))) == "63C2"
    assert sw(run(c, verify("9999"))) == "63C1"
    assert sw(run(c, verify("1234"))) == "9000"
    assert sw(run(c, verify(None))) == "63C3"


def test_lock_63c0_then_6984_and_persistence(make_card, state, tmp_path):
    c = make_card()
    run(c, JPKI, ef(0x0018))
    assert sw(run(c, verify("0000"))) == "63C2"
    # counters survive a new CardState on the same dir (simulator restart) and a new card object (re-insert)
    st2 = CardState(state.dir)
    c2 = make_card(st=st2)
    run(c2, JPKI, ef(0x0018))
    assert sw(run(c2, verify(None))) == "63C2"
    assert sw(run(c2, verify("0000"))) == "63C1"
    assert sw(run(c2, verify("0000"))) == "63C0"
    assert sw(run(c2, verify("0000"))) == "6984"
    assert sw(run(c2, verify("1234"))) == "6984"               # right PIN does not help once locked
    assert sw(run(c2, verify(None))) == "6984"
    assert CardState(state.dir).tries("taro", "jpki/0018", 3) == 0
    # the text AP PIN has its own counter
    assert sw(run(c2, TEXT, ef(0x0011), verify(None))) == "63C3"
    # a fresh state dir is a fresh card
    fresh = make_card(st=CardState(tmp_path / "fresh"))
    assert sw(run(fresh, JPKI, ef(0x0018), verify(None))) == "63C3"
    state.reset()
    assert sw(run(make_card(st=CardState(state.dir)), JPKI, ef(0x0018), verify(None))) == "63C3"


def test_profile_initial_counters(make_card):
    assert sw(run(make_card("locked"), JPKI, ef(0x0018), verify(None))) == "6984"
    assert sw(run(make_card("locked"), JPKI, ef(0x0018), verify("1111"))) == "6984"
    c = make_card("lasttry")
    assert sw(run(c, JPKI, ef(0x0018), verify(None))) == "63C1"
    assert sw(run(c, verify("0000"))) == "63C0"
    assert sw(run(c, verify("2222"))) == "6984"
    c = make_card("hanako")
    assert sw(run(c, JPKI, ef(0x0018), verify("5678"))) == "9000"


def test_nopin_card(make_card):
    c = make_card("nopin")
    run(c, JPKI, ef(0x0008))
    avail = run(c, "00B0000003")
    assert sw(avail) == "9000" and avail[2] == 0x00            # design assumption: byte 2 = auth PIN set
    assert run(make_card("taro"), JPKI, ef(0x0008), "00B0000003")[2] == 0x01
    assert sw(run(c, ef(0x0018), verify(None))) == "6984"
    assert sw(run(c, verify("1234"))) == "6984"
    # the certificate is still free to read
    assert sw(run(c, ef(0x000A), "00B0000004")) == "9000"


def test_verify_errors(make_card):
    c = make_card()
    run(c, JPKI)
    assert sw(run(c, verify(None))) == "6986"                  # no EF selected
    assert sw(run(c, ef(0x000A), verify(None))) == "6986"      # not a PIN EF
    assert sw(run(c, ef(0x0018), "00200081")) == "6A86"


def test_power_cycle_clears_verification_not_counters(make_card):
    c = make_card()
    run(c, JPKI, ef(0x0018), verify("0000"), verify("1234"))
    run(c, TEXT, ef(0x0011), verify("1234"))
    c.reset()
    assert sw(run(c, TEXT, ef(0x0002), "00B0000004")) == "6982"
    c2 = make_card()
    run(c2, JPKI, ef(0x0018), verify("0000"))
    c2.reset()
    assert sw(run(c2, JPKI, ef(0x0018), verify(None))) == "63C2"


# ------------------------------------------------------------------ signature


def _sign_apdu(data: bytes) -> str:
    return f"802A0080{len(data):02X}" + data.hex() + "00"


def test_signature_verifies_with_cert(make_card, pki, profiles):
    c = make_card()
    digest = hashlib.sha256(b"challenge from the host").digest()
    run(c, JPKI, ef(0x0017))
    assert sw(run(c, _sign_apdu(SHA256_DI + digest))) == "6982"   # not verified
    run(c, ef(0x0018), verify("1234"), ef(0x0017))
    r = run(c, _sign_apdu(SHA256_DI + digest))
    assert sw(r) == "9000" and len(r) == 258
    cert = pki.issue(profiles["taro"])[0]
    cert.public_key().verify(r[:-2], b"challenge from the host", padding.PKCS1v15(), hashes.SHA256())
    assert sw(run(c, _sign_apdu(b"\x30\x31" + digest))) == "6A80"          # malformed DigestInfo
    assert sw(run(c, _sign_apdu(SHA256_DI + digest[:31]))) == "6A80"
    assert sw(run(c, "802A0180" + _sign_apdu(SHA256_DI + digest)[8:])) == "6A86"
    # SFI form (P2 = 0x97) works without selecting 0017
    run(c, ef(0x000A))
    assert sw(run(c, "802A0097" + _sign_apdu(SHA256_DI + digest)[8:])) == "9000"
    # not on a non-key EF
    assert sw(run(c, _sign_apdu(SHA256_DI + digest))) == "6986"
    # new power cycle: verification gone
    c.reset()
    assert sw(run(c, JPKI, ef(0x0017), _sign_apdu(SHA256_DI + digest))) == "6982"


# ------------------------------------------------------------------ text AP / 券面AP


def test_text_ap_basic4(make_card, profiles):
    c = make_card()
    assert sw(run(c, TEXT, ef(0x0011), verify("1234"))) == "9000"
    run(c, ef(0x0002))
    data = read_all(c)
    items = parse_ff20(data)
    p = profiles["taro"]
    assert items[0xDF22].decode() == p.name
    assert items[0xDF23].decode() == p.address
    assert items[0xDF24] == p.birth_date.strftime("%Y%m%d").encode()
    assert items[0xDF25] == b"1"
    offs = items[0xDF21]
    assert len(offs) == 8
    assert [data[int.from_bytes(offs[i:i + 2], "big"):][:2].hex() for i in range(0, 8, 2)] == \
        ["df22", "df23", "df24", "df25"]
    run(c, ef(0x0001))
    r = run(c, "00B0000011")
    assert r[:3] == b"\xFF\x10\x0C" and r[3:15] == p.my_number.encode() and r[15:17] == b"\xFF\xFF"


def test_text_ap_code_b_opens_basic4_only(make_card, profiles):
    c = make_card()
    run(c, TEXT, ef(0x0015), verify(profiles["taro"].code_b()))
    assert sw(run(c, ef(0x0002), "00B0000004")) == "9000"
    assert sw(run(c, ef(0x0001), "00B0000004")) == "6982"
    assert sw(run(c, ef(0x0012), verify(None))) == "6984"      # blocked on every card


def test_face_ap_code_b_and_photo(make_card, profiles):
    from PIL import Image

    c = make_card()
    run(c, FACE, ef(0x0012))
    assert sw(run(c, verify(None))) == "63CA"                  # 10 tries
    assert sw(run(c, verify("00000000000000"))) == "63C9"
    assert sw(run(c, verify(profiles["taro"].code_b()))) == "9000"
    assert sw(run(c, verify(None))) == "63CA"
    run(c, ef(0x0002))
    data = read_all(c)
    assert len(data) > 256                                     # needed chunked reads with offsets
    items = parse_ff20(data)
    assert items[0xDF22] == b"19810512" and items[0xDF23] == b"1"
    im = Image.open(io.BytesIO(items[0xDF27]))
    assert im.format == "JPEG2000" and im.mode == "L"
    im.load()
    # 照合番号A opens it too
    c2 = make_card()
    assert sw(run(c2, FACE, ef(0x0013), verify(profiles["taro"].my_number))) == "9000"
    assert sw(run(c2, ef(0x0002), "00B0000004")) == "9000"


# ------------------------------------------------------------------ data faults


def test_fault_certs(make_card):
    bad = make_card(faults=FaultPlan(invalid_cert=True))
    run(bad, JPKI, ef(0x000A))
    with pytest.raises(ValueError):
        x509.load_der_x509_certificate(read_all(bad))
    big = make_card(faults=FaultPlan(oversized_cert=True))
    run(big, JPKI, ef(0x000A))
    head = run(big, "00B0000004")
    assert head[:4] == b"\x30\x82\xFF\xFF"
    assert len(read_all(big)) < 0xFFFF


def test_fault_photos(make_card, profiles):
    from PIL import Image

    for faults, check in ((FaultPlan(photo_not_image=True), "notimage"), (FaultPlan(photo_bomb=True), "bomb")):
        c = make_card(faults=faults)
        run(c, FACE, ef(0x0012), verify(profiles["taro"].code_b()), ef(0x0002))
        data = read_all(c)
        assert len(data) < 32 * 1024
        photo = parse_ff20(data)[0xDF27]
        if check == "notimage":
            with pytest.raises(Exception):
                Image.open(io.BytesIO(photo)).load()
        else:
            with pytest.raises(Image.DecompressionBombError):
                Image.open(io.BytesIO(photo))


def test_fault_plan_from_dict():
    assert FaultPlan.from_dict({"pull_at_apdu": 3}).pull_at_apdu == 3
    with pytest.raises(ValueError):
        FaultPlan.from_dict({"nope": 1})
    assert not FaultPlan().active() and FaultPlan(slow_s=0.1).active()


def test_load_profiles_custom_file(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[x]\nname = "試験　一"\nbirth_date = 2020-01-01\ncert_not_after = 2030-01-01\n'
                 'cert_not_before = 2025-01-01\nphoto = "a.jpg"\nsecurity_code = "0001"\ncard_expiry_year = 2030\n',
                 encoding="utf-8")
    p = load_profiles(f)["x"]
    assert p.cert_not_before == dt.date(2025, 1, 1) and p.pin is None and p.pin_tries == 3
    assert p.code_b() == "02010120300001"
