"""Payments: an environment's provider (Stripe, or manual when none is connected), the
customers' payment methods kept there, and the collection of open invoices."""
