"""The database schema: every table in one registry, and the Alembic migrations that build it.

Above every domain, because it imports each domain's models; `db/` stays plumbing."""
