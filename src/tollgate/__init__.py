"""Tollgate: self-hosted pricing, packaging and entitlements."""

__version__ = "0.1.0"
