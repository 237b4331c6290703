"""HTTP plumbing shared by every domain: auth, sessions, errors, envelopes, pagination."""
