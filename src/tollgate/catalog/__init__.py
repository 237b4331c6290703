"""The product catalog: features, products, plans and add-ons with their entitlements."""
