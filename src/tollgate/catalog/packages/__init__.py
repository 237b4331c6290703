"""Plans and add-ons: versioned packages of entitlements.

Edits go to a draft; publishing turns the draft into a new immutable version and keeps
the old ones, because subscriptions point at versions.
"""
