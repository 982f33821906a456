"""One readable log line per step of a visit.

Technicians read these lines over the serial console, so they say what happened
in plain words. They are built from events and actions only, which carry no PIN
digit by construction; PinDigit is logged as a count.
"""

from __future__ import annotations

from mynad.core import events as ev
from mynad.core.flow import ReceptionFlow


def describe_event(e: ev.Event, flow: ReceptionFlow) -> str | None:
    v = flow.visit
    tag = f"visit {v.visit_id}: " if v else ""
    if isinstance(e, ev.CardInserted):
        return f"visit {e.visit_id}: card placed"
    if isinstance(e, ev.CardRead):
        tries = "no PIN set" if not e.has_pin else ("PIN locked" if e.pin_locked else f"PIN tries left {e.pin_tries}")
        return f"{tag}card read: certificate {e.cert_state.value}, {tries}"
    if isinstance(e, ev.CardFailed):
        return f"{tag}card error {e.code}: {e.reason}"
    if isinstance(e, ev.CardRemoved):
        return f"{tag}card removed"
    if isinstance(e, ev.KeyPressed):
        return f"{tag}key {e.pos} on {flow.state}"
    if isinstance(e, ev.PinDigit):
        return f"{tag}PIN digit {(v.entered + 1) if v else '?'} entered"
    if isinstance(e, ev.PinChecked):
        if e.ok:
            return f"{tag}PIN accepted by the card"
        return f"{tag}PIN " + ("locked by the card" if e.locked else f"wrong, {e.tries_left} tries left")
    if isinstance(e, ev.StaffPasswordChecked):
        return f"{tag}staff password {'accepted' if e.ok else 'refused'}"
    if isinstance(e, ev.FaceHint):
        return f"{tag}face guidance: {e.hint}"
    if isinstance(e, ev.FaceDone):
        score = f" (score {e.score:.3f})" if e.score is not None else ""
        return f"{tag}face {'matched' if e.match else 'not matched'}: {e.reason}{score}"
    if isinstance(e, ev.FaceUnavailable):
        return f"{tag}face authentication unavailable: {e.reason}"
    if isinstance(e, ev.HostQualification):
        return f"{tag}host answered: {'qualified' if e.ok else 'not qualified'}" + \
            ("" if e.registered else ", not registered as health insurance card")
    if isinstance(e, ev.HostVisualCheck):
        return "staff asked for 目視確認 from the host"
    if isinstance(e, ev.AuthFailed):
        return f"{tag}authentication failed {e.code}: {e.reason}"
    if isinstance(e, ev.TimerFired):
        return f"{tag}timer {e.name} expired" if e.name in ("screen", "host", "card_left", "visual_mode") else None
    return None


def describe_action(a: ev.Action) -> str | None:
    if isinstance(a, ev.Show):
        return f"screen: {a.screen.id}"
    if isinstance(a, ev.VerifyPin):
        return "sending VERIFY to the card"
    if isinstance(a, ev.Authenticate):
        return f"authenticating to the host by {a.method}" + (" (proxy)" if a.proxy else "")
    if isinstance(a, ev.SendHost):
        if a.type == "visit.aborted":  # the code too: technicians look it up in docs/error-codes.md
            return f"to host: {a.type} ({a.fields.get('reason')}, code {a.fields.get('code')})"
        return f"to host: {a.type}" + (f" ({a.fields.get('kind')}, code {a.fields.get('code')})"
                                       if a.type == "reader.event" and a.fields.get("code") else "")
    if isinstance(a, ev.StartFace):
        return f"face attempt {a.attempt}: camera on"
    if isinstance(a, ev.StopFace):
        return "camera off"
    return None
