"""Features: what a plan can grant (BOOLEAN, NUMBER, ENUM), and how usage is metered."""
