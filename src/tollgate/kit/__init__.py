"""Small helpers that every domain may use and that import no domain."""
