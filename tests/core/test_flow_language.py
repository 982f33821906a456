"""Key 11: the patient's language and text size, for one visit (docs/languages.md).

On the first screen after the card is read (the method choice, the certificate notices)
key 11 opens the language menu: 1..7 choose a language, 12 switches the text size, 10 or
11 go back unchanged. The flow says so with SetDisplay before the screen it applies to;
the choice holds for the visit and the reader returns to Japanese when the card is removed.
"""

from __future__ import annotations

from mynad.core import events as ev
from mynad.core.cert_policy import CertState
from mynad.ui.i18n import LANG_CODES
from mynad.ui.texts import LANGUAGE_KEY_SCREENS, content

from .conftest import Driver


def displays(actions) -> list[ev.SetDisplay]:
    return [a for a in actions if isinstance(a, ev.SetDisplay)]


def test_start_sets_japanese():
    d = Driver()
    assert displays(d.actions) == [ev.SetDisplay("ja", False)]
    assert d.actions.index(ev.SetDisplay()) < max(i for i, a in enumerate(d.actions) if isinstance(a, ev.Show))


def test_key_11_on_the_method_choice_opens_the_menu_and_a_language_holds_for_the_visit(d):
    d.insert()
    choices = d.screen.params["choices"]
    assert d.screen.id in LANGUAGE_KEY_SCREENS and content(d.screen).mid
    d.key(11)
    assert d.flow.state == "language" and d.screen.id == "language" and d.screen.params["current"] == "ja"
    out = d.key(2)  # English
    assert displays(out) == [ev.SetDisplay("en", False)]
    shows = [a for a in out if isinstance(a, ev.Show)]
    assert out.index(displays(out)[0]) < out.index(shows[0])  # the language first, then the screen in it
    assert d.screen.id == "method_choice" and d.screen.params["choices"] == choices  # keys never move
    assert d.flow.state == "method" and d.flow.visit.lang == "en"
    d.choose("pin")  # the visit goes on in English: no SetDisplay until the card is removed
    d.type_pin()
    d.send(ev.PinChecked(True, 3, False))
    d.qualify()
    while d.screen.id == "consent":
        assert not displays(d.key(12))
    assert d.screen.id == "done"
    out = d.send(ev.CardRemoved())
    assert displays(out) == [ev.SetDisplay("ja", False)] and d.screen.id == "idle"
    d.insert(visit_id="v2")
    assert d.flow.visit.lang == "ja"


def test_every_language_key(d):
    for pos, code in enumerate(LANG_CODES, 1):
        d.insert(visit_id=f"v{pos}")
        d.key(11)
        assert displays(d.key(pos)) == [ev.SetDisplay(code, False)]
        assert d.flow.visit.lang == code
        out = d.send(ev.CardRemoved())
        assert displays(out) == ([] if code == "ja" else [ev.SetDisplay()])


def test_key_12_in_the_menu_switches_the_text_size_for_the_visit(d):
    d.insert()
    d.key(11)
    assert displays(d.key(12)) == [ev.SetDisplay("ja", True)]
    assert d.screen.id == "method_choice"
    d.key(11)
    assert displays(d.key(5)) == [ev.SetDisplay("vi", True)]  # the size stays when the language changes
    d.key(11)
    assert displays(d.key(12)) == [ev.SetDisplay("vi", False)]  # and back
    d.key(11)
    d.key(12)
    assert displays(d.send(ev.CardRemoved())) == [ev.SetDisplay("ja", False)]


def test_back_and_11_again_change_nothing(d):
    d.insert()
    for back in (10, 11):
        d.key(11)
        out = d.key(back)
        assert not displays(out) and d.screen.id == "method_choice" and d.flow.state == "method"
    d.key(11)
    assert not d.key(8) and d.flow.state == "language"  # other keys do nothing
    assert not displays(d.send(ev.CardRemoved()))  # nothing changed: nothing to restore


def test_key_11_on_the_certificate_notices(d):
    for cert, screen in ((CertState.EXPIRING, "cert_expiring"), (CertState.GRACE, "cert_grace")):
        d.insert(cert=cert, visit_id=str(cert))
        assert d.screen.id == screen and screen in LANGUAGE_KEY_SCREENS
        d.key(11)
        assert d.screen.id == "language"
        d.key(6)  # Português
        assert d.screen.id == screen and d.flow.state == "cert_notice" and d.flow.visit.lang == "pt"
        d.key(12)
        assert d.screen.id == "method_choice"
        d.key(11)  # the method choice that follows offers it too
        assert d.screen.id == "language" and d.screen.params["current"] == "pt"
        d.key(10)
        d.send(ev.CardRemoved())


def test_key_11_does_nothing_past_the_first_screen(d):
    d.insert()
    d.choose("face")
    assert not d.key(11) and d.flow.state == "face"
    d.send(ev.FaceDone(True, "match", 0.7))
    d.qualify()
    assert d.screen.id == "consent"
    assert not d.key(11) and d.screen.id == "consent"


def test_the_menu_times_out_like_any_screen(d):
    d.insert()
    d.key(11)
    assert "screen" in d.timers
    d.fire("screen")
    assert d.screen.id == "cancelled" and d.screen.params["reason"] == "timeout"


def test_face_unavailable_while_in_the_menu_keeps_the_keys_and_leads_to_face_failed(d):
    d.insert()
    choices = d.screen.params["choices"]
    d.key(11)
    d.send(ev.FaceUnavailable("no photo"))
    d.key(10)
    assert d.screen.params["choices"] == choices  # keys never shift under a finger
    d.choose("face")
    assert d.screen.id == "face_failed"


def test_staff_visual_check_from_the_host_reaches_the_menu(d):
    d.insert()
    d.key(11)
    d.send(ev.HostVisualCheck())
    assert d.flow.state == "staff_password"
