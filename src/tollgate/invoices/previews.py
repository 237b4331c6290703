"""A bill in the shape a preview answers with (`immediateInvoice`, `recurringInvoice`)."""

from tollgate.kit.money import wire_amount, wire_price
from tollgate.prices.bill import Bill
from tollgate.subscriptions.schemas import Invoice, PreviewLine, PreviewPeriod


def preview_invoice(bill: Bill) -> Invoice:
    currency = bill.currency
    return Invoice(
        sub_total=wire_amount(bill.subtotal, currency),
        discount=wire_amount(bill.discount, currency),
        total=wire_amount(bill.total, currency),
        currency=currency,
        billing_period_range=PreviewPeriod(start=bill.period_start, end=bill.period_end),
        lines=[
            PreviewLine(
                currency=currency,
                description=line.description,
                sub_total=wire_amount(line.amount, currency),
                unit_price=wire_price(line.unit_price),
                quantity=float(line.quantity),
            )
            for line in bill.lines
        ],
    )
