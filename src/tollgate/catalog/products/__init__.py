"""Products: groups of plans and add-ons, with the settings of their subscriptions."""
