"""Maintain the message catalogues with Babel: extract, update, compile, check.

A development and release tool, never imported by the daemon (Babel is not needed on
the device: :mod:`mynad.ui.i18n` reads the compiled ``.mo`` files with the standard
library)::

    python -m mynad.ui.catalogs extract   # Japanese texts -> mynad/locale/mynad.pot
    python -m mynad.ui.catalogs update    # merge the template into every <lang>/LC_MESSAGES/mynad.po
    python -m mynad.ui.catalogs compile   # .po -> .mo (shipped as package data)
    python -m mynad.ui.catalogs check     # non-zero exit when a text is untranslated or a .mo is stale

Where the Japanese texts come from:

* ``mynad/ui/*.py``: strings marked ``N_("…")`` (or ``_``/``gettext``), found by Babel's
  own Python extractor;
* ``mynad/core/codes.py``: the ``patient`` text of every reader code (third argument of
  ``_c(...)`` / ``ReaderCode(...)``). That table keeps plain strings on purpose (the core
  does not depend on the UI), so :func:`extract_reader_codes` reads them from its syntax
  tree; a code added there is in the next ``extract`` without any marking.

``update`` never fuzzy-matches: a changed Japanese text comes back untranslated, so
``check`` (and tests/ui/test_i18n.py) fail until someone translates it, instead of
showing a translation of the old sentence.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

from mynad.ui.i18n import DOMAIN, TRANSLATED, language

PACKAGE = Path(__file__).resolve().parent.parent  # daemon/mynad
LOCALE_DIR = PACKAGE / "locale"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
PYTHON_SOURCES = ("ui/*.py",)
CODE_TABLES = ("core/codes.py",)
_CODE_CALLS = {"_c": 2, "ReaderCode": 2}  # function name -> position of the patient text
_PROJECT = "myna-reader"
_HEADER = ("# myna-reader: the texts of the reader's screens{lang}.\n"
           "# Japanese is the source language: each msgid is the Japanese text as shown.\n"
           "# Maintained with `python -m mynad.ui.catalogs` (docs/languages.md); keep the\n"
           "# meaning row by row and every {{placeholder}} as it is.")


def _dress(cat: Catalog, code: str | None) -> None:
    """Our header instead of Babel's template boilerplate (FIRST AUTHOR, EMAIL@ADDRESS)."""
    name = f" in {language(code).name}" if code else ""
    cat.header_comment = _HEADER.format(lang=name)
    cat.project, cat.version = _PROJECT, "1"
    cat.msgid_bugs_address = "docs/languages.md"
    cat.last_translator = "myna-reader"
    cat.language_team = language(code).name if code else ""


def po_path(code: str) -> Path:
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_file(code: str) -> Path:
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.mo"


def extract_reader_codes(fileobj: IO[bytes], keywords: Any, comment_tags: Any,
                         options: dict[str, Any]) -> Iterator[tuple[int, str, str, list[str]]]:
    """A Babel extraction method: the patient texts of the reader-code table
    (``_c(code, reason, patient, ...)``, positional or ``patient=``)."""
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        pos = _CODE_CALLS.get(node.func.id)
        if pos is None:
            continue
        arg: ast.expr | None = node.args[pos] if len(node.args) > pos else None
        for k in node.keywords:
            if arg is None and k.arg == "patient":
                arg = k.value
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value:
            code = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else "?"
            yield node.lineno, node.func.id, arg.value, [f"reader code {code}"]


def template() -> Catalog:
    """The catalogue of every Japanese text, with where it is used."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import DEFAULT_KEYWORDS, extract

    cat = Catalog(project=_PROJECT, domain=DOMAIN, locale=None, fuzzy=False,
                  msgid_bugs_address="", copyright_holder="", charset="utf-8")
    files: list[tuple[Path, str]] = []
    for pattern in PYTHON_SOURCES:
        files += [(p, "python") for p in sorted(PACKAGE.glob(pattern)) if p.name != "catalogs.py"]
    for rel in CODE_TABLES:
        if (PACKAGE / rel).is_file():
            files.append((PACKAGE / rel, "codes"))
    for path, method in files:
        rel = path.relative_to(PACKAGE.parent).as_posix()
        with path.open("rb") as f:
            if method == "python":
                found = extract("python", f, keywords=DEFAULT_KEYWORDS, comment_tags=("TRANSLATORS:",))
                for lineno, message, comments, context in found:
                    if isinstance(message, str) and message:
                        cat.add(message, None, [(rel, lineno)], auto_comments=comments, context=context)
            else:
                for lineno, _func, message, comments in extract_reader_codes(f, None, None, {}):
                    cat.add(message, None, [(rel, lineno)], auto_comments=comments)
    return cat


def _write_po(path: Path, catalog: Catalog) -> None:
    from babel.messages.pofile import write_po

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    write_po(buf, catalog, width=100, omit_header=False, sort_output=False, include_previous=False)
    path.write_bytes(buf.getvalue())


def read_po(path: Path, code: str | None = None) -> Catalog:
    from babel.messages.pofile import read_po as _read

    with path.open("rb") as f:
        return _read(f, locale=language(code).locale if code else None, domain=DOMAIN)


def extract() -> Path:
    cat = template()
    _dress(cat, None)
    _write_po(TEMPLATE, cat)
    return TEMPLATE


def update() -> list[Path]:
    """Merge the template into each language's .po (new texts empty, removed ones obsolete)."""
    from babel.messages.catalog import Catalog

    tmpl = read_po(TEMPLATE)
    written = []
    for code in TRANSLATED:
        path = po_path(code)
        if path.is_file():
            cat = read_po(path, code)
        else:
            cat = Catalog(locale=language(code).locale, domain=DOMAIN, project=_PROJECT, fuzzy=False,
                          msgid_bugs_address="", copyright_holder="", charset="utf-8")
        cat.update(tmpl, no_fuzzy_matching=True, update_header_comment=False, keep_user_comments=True)
        cat.obsolete.clear()  # old Japanese texts: kept in git history, not in the shipped file
        _dress(cat, code)
        _write_po(path, cat)
        written.append(path)
    return written


def compile_mo(code: str) -> bytes:
    """The .mo bytes of ``code``'s .po (untranslated and fuzzy entries are left out)."""
    from babel.messages.mofile import write_mo

    buf = io.BytesIO()
    write_mo(buf, read_po(po_path(code), code), use_fuzzy=False)
    return buf.getvalue()


def compile_all() -> list[Path]:
    out = []
    for code in TRANSLATED:
        mo_file(code).write_bytes(compile_mo(code))
        out.append(mo_file(code))
    return out


def problems() -> list[str]:
    """Every reason the catalogues cannot ship: untranslated, fuzzy, placeholders that differ,
    a .po behind the sources, a .mo behind its .po."""
    import re

    brace = re.compile(r"\{[a-z_]*\}")
    out: list[str] = []
    wanted = {str(m.id) for m in template() if m.id}  # no plural forms: every msgid is one string
    for code in TRANSLATED:
        path = po_path(code)
        if not path.is_file():
            out.append(f"{code}: {path} is missing (run update)")
            continue
        cat = read_po(path, code)
        have = {str(m.id): m for m in cat if m.id}
        for msgid in sorted(wanted - set(have)):
            out.append(f"{code}: not in the catalogue (run update): {msgid!r}")
        for msgid, m in have.items():
            if msgid not in wanted:
                out.append(f"{code}: no longer used (run update): {msgid!r}")
            elif not m.string:
                out.append(f"{code}: untranslated: {msgid!r}")
            elif m.fuzzy:
                out.append(f"{code}: fuzzy: {msgid!r}")
            elif sorted(brace.findall(msgid)) != sorted(brace.findall(str(m.string))):
                out.append(f"{code}: placeholders differ: {msgid!r} -> {m.string!r}")
        mo = mo_file(code)
        if not mo.is_file() or mo.read_bytes() != compile_mo(code):
            out.append(f"{code}: {mo} is missing or older than its .po (run compile)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mynad.ui.catalogs", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("extract", "update", "compile", "check", "all"))
    args = ap.parse_args(argv)
    if args.command in ("extract", "all"):
        print(f"template: {extract()}")
    if args.command in ("update", "all"):
        for p in update():
            print(f"updated: {p}")
    if args.command in ("compile", "all"):
        for p in compile_all():
            print(f"compiled: {p}")
    if args.command in ("check", "all"):
        found = problems()
        for line in found:
            print(line, file=sys.stderr)
        print(f"catalogues: {len(found)} problem(s)")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
