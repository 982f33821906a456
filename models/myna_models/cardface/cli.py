"""``mynactl card-face IMAGE [--json]``: read 照合番号B's fields from a tray-camera image.

A technician's check of the card-face camera and the reader: it prints the fields it read
(this is the operator's own card on the bench, and the command exists to show them), or a
plain sentence and a non-zero exit when the card face cannot be read. Exit codes: 0 read,
1 no card face readable in the image, 2 the image or the OCR model cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_READ, EXIT_UNREADABLE, EXIT_ERROR = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="a frame of the card-face camera (any image file)")
    p.add_argument("--json", action="store_true",
                   help='print {"ok", "confidence", "birth_date", "expiry_year", "security_code"}')
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")


def add_card_face(subparsers) -> None:
    """Register ``card-face`` on a subcommand table (mynactl's)."""
    p = subparsers.add_parser("card-face", help="read birth date, expiry year and security code from a card-face image")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from myna_models.cardface import CardFaceReader
    from myna_models.engine import load_image
    from myna_models.errors import FaceError

    try:
        img = load_image(args.image)
        reader = CardFaceReader(threads=args.threads)
    except FaceError as e:  # unreadable file, or the OCR model missing / altered
        print(f"mynactl card-face: {e}", file=sys.stderr)
        return EXIT_ERROR
    r = reader.read(img)
    birth = r.birth_date if r.ok else None  # CardFaceReader fills every field of an ok read
    if args.json:
        out: dict[str, Any] = {"ok": r.ok, "confidence": round(r.confidence, 4)}
        if birth is not None:
            out.update(birth_date=birth.isoformat(), expiry_year=r.expiry_year, security_code=r.security_code)
        else:
            out["reason"] = r.reason
        print(json.dumps(out, ensure_ascii=False))
    elif birth is not None:
        print(f"birth date {birth.isoformat()}, card valid to {r.expiry_year}, "
              f"security code {r.security_code} (confidence {r.confidence:.3f})")
    if not r.ok:
        print(f"mynactl card-face: no card face readable: {r.reason}", file=sys.stderr)
        return EXIT_UNREADABLE
    return EXIT_READ


def main_card_face(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mynactl card-face", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main_card_face())
