"""Storage plumbing: the engine, sessions, the declarative base, the change feed and log.

Imports no domain: the tables and their migrations live in `tollgate.schema`."""
