"""Example feature repos shipped with fsd, and generators of realistic data for them (used by `fsd demo`)."""
from __future__ import annotations

from pathlib import Path

FRAUD_REPO = Path(__file__).resolve().parent / "fraud"
