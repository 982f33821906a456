"""Errors raised by the face engine. ``str(e)`` is always a plain sentence fit for a log or a technician."""

from __future__ import annotations


class FaceError(Exception):
    """Base class: anything that went wrong while matching faces."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ModelError(FaceError):
    """A model file is missing, tampered with (sha256 mismatch), unknown to the manifest or does not load."""


class NoFace(FaceError):
    """No usable face in an image."""


class PhotoError(FaceError):
    """The card photo is not an image, is too large, or looks like a decompression bomb."""
