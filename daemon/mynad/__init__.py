"""mynad: the myna-reader daemon (顔認証付きカードリーダー)."""

from importlib.metadata import PackageNotFoundError, version as _dist_version

# pyproject.toml is the one place the version lives; a release build sets it there (in its temp
# copy), so the installed wheel's metadata is what a reader reports.
try:
    __version__ = _dist_version("myna-reader")
except PackageNotFoundError:  # a source tree that was never installed (pip install -e .)
    __version__ = "0+unknown"
