"""Coupons: a percentage or fixed amounts off, for some months or for ever."""
