"""mynad: the myna-reader daemon (顔認証付きカードリーダー)."""

__version__ = "0.1.0"
