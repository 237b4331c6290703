"""What a subscription owes: invoices issued at start, at each renewal and for changes."""
