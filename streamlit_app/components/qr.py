"""A QR code drawn here (segno, pure Python): an authenticator app scans the otpauth:// URI
without any image service seeing the secret."""

from __future__ import annotations

import io

import segno


def qr_png(text: str, *, scale: int = 6) -> bytes:
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=scale, border=2)
    return out.getvalue()
