"""An invoice as a PDF document, laid out by fpdf2 with its built-in fonts."""

from decimal import Decimal

from fpdf import FPDF

from tollgate.invoices.announcements import wire_state
from tollgate.invoices.models import Invoice
from tollgate.kit.money import from_minor


def render(invoice: Invoice, *, customer_ref: str, issuer: str = "Tollgate") -> bytes:
    document = FPDF(format="A4")
    document.set_title(f"Invoice {invoice.number}")
    document.set_creator("Tollgate")
    document.add_page()
    document.set_font("Helvetica", "B", 18)
    document.cell(0, 12, f"Invoice {invoice.number}", new_x="LMARGIN", new_y="NEXT")
    document.set_font("Helvetica", size=10)
    facts = [
        ("From", issuer),
        ("Customer", customer_ref),
        ("Issued", invoice.issued_at.strftime("%Y-%m-%d")),
        (
            "Period",
            f"{invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d}",
        ),
        (
            "State",
            wire_state(invoice.state)
            + (f" ({invoice.state.value})" if invoice.state_reason else ""),
        ),
    ]
    for label, value in facts:
        document.cell(30, 6, label)
        document.cell(0, 6, _latin(value), new_x="LMARGIN", new_y="NEXT")
    document.ln(4)
    currency = invoice.currency
    with document.table(
        col_widths=(90, 25, 35, 35), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT")
    ) as table:
        table.row(["Description", "Quantity", "Unit price", "Amount"])
        for line in invoice.lines:
            table.row(
                [
                    _latin(line.description),
                    _number(Decimal(line.quantity)),
                    _number(Decimal(line.unit_price)),
                    _money(line.amount, currency),
                ]
            )
    document.ln(4)
    document.set_font("Helvetica", "B", 11)
    totals = [("Subtotal", invoice.subtotal)]
    if invoice.discount:
        totals.append(("Discount", -invoice.discount))
    totals.append(("Total", invoice.total))
    if invoice.credit_applied:
        totals.append(("Credit applied", -invoice.credit_applied))
        totals.append(("Amount due", invoice.total - invoice.credit_applied))
    for label, minor in totals:
        document.cell(150, 7, label, align="R")
        document.cell(35, 7, _money(minor, currency), align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())


def _money(minor: int, currency: str) -> str:
    return f"{from_minor(minor, currency):,} {currency.upper()}"


def _number(value: Decimal) -> str:
    return f"{value.normalize():,f}"


def _latin(text: str) -> str:
    # The built-in fonts cover Latin-1; anything else is shown as '?', never dropped.
    return text.encode("latin-1", "replace").decode("latin-1")
