"""Environments, their API keys and their customer-token signing secrets."""
