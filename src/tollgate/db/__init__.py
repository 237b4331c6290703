"""Storage: the engine, sessions, the declarative base and Alembic migrations."""
