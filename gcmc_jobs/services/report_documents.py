"""The files of a monthly compliance report: a PDF (fpdf2) and a CSV, from its figures.

Both are rendered from ``reports.data`` alone (:func:`gcmc_jobs.services.reports.aggregate`),
so rendering again gives the same bytes: the PDF's creation date is the report's
``generated_at``, nothing else in it depends on the clock.

The PDF (A4): the summary and risk distribution, the twelve-month trend (a bar per month of
the share of clients at each level, and the average score), the 20 highest-risk clients and
the open overdue filings (tables whose heading repeats on each page). It uses the PDF core
font Helvetica, which every viewer has and which needs no font file: text outside Latin-1
is written without its accents where it has a Latin-1 base letter (``Łódź`` → ``Lodz``),
else as ``?``. The CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the
accents) has one row per active client; a cell that a spreadsheet would take for a formula
(starting with ``=``, ``+``, ``-``, ``@``) is prefixed with ``'``.

fpdf2 is imported when a PDF is rendered, not with this module: a worker or a command that
never renders one does not load it (nor Pillow and fontTools, which it imports).
"""

from __future__ import annotations

import csv
import io
import itertools
import unicodedata
from datetime import date, datetime
from typing import Any

__all__ = ["CSV_COLUMNS", "render_csv", "render_pdf", "report_file_names"]

#: The CSV's columns.
CSV_COLUMNS = (
    "client_id",
    "client",
    "score",
    "level",
    "missing",
    "expired",
    "expiring",
    "overdue",
    "computed_at",
)
#: Colours of the risk levels (RGB): the dashboard's green, amber and red.
LEVEL_COLOURS = {"low": (46, 160, 67), "medium": (230, 160, 20), "high": (207, 34, 46)}
_LEVELS = ("low", "medium", "high")


def report_file_names(data: dict[str, Any]) -> tuple[str, str]:
    """The PDF's and the CSV's file names: ``compliance-report-2026-11.pdf`` / ``.csv``."""
    stem = f"compliance-report-{data['period']}"
    return f"{stem}.pdf", f"{stem}.csv"


#: Letters and signs without a Latin-1 decomposition, written as their nearest Latin-1 form.
_SUBSTITUTES = {
    "\u0141": "L",
    "\u0142": "l",
    "\u0110": "D",
    "\u0111": "d",
    "\u0152": "OE",
    "\u0153": "oe",
    "\u2013": "-",
    "\u2014": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2026": "...",
    "\u20ac": "EUR",
}


def latin1(text: Any) -> str:
    """``text`` written with the core fonts' Latin-1 characters (module docstring)."""
    out = []
    for char in str(text):
        if ord(char) < 256:
            out.append(char)
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if ord(c) < 256 and c.isprintable()
        )
        out.append(base or _SUBSTITUTES.get(char, "?"))
    return "".join(out)


def _month_name(label: str) -> str:
    year, month = label.split("-")
    return date(int(year), int(month), 1).strftime("%B %Y")


def render_pdf(data: dict[str, Any]) -> bytes:
    """The report's PDF (module docstring)."""
    # Deferred on purpose: see the module docstring.
    from fpdf import FPDF

    tenant = latin1(data["tenant"]["name"])
    title = f"Compliance report - {_month_name(data['period'])}"

    class Report(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("Helvetica", size=8)
            self.set_text_color(110, 110, 110)
            self.cell(0, 5, f"{tenant} - {title}", align="L")
            self.cell(0, 5, f"page {self.page_no()} of {{nb}}", align="R")

    pdf = Report(format="A4")
    pdf.set_creation_date(datetime.fromisoformat(data["generated_at"]))
    pdf.set_title(f"{tenant}: {title}")
    pdf.set_author("gcmc-jobs")
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.set_margins(15, 15, 15)
    pdf.add_page()
    _heading(pdf, tenant, title, data)
    _distribution(pdf, data["distribution"])
    _trend(pdf, data["trend"])
    _top_clients(pdf, data["top_clients"])
    _overdue_filings(pdf, data["overdue_filings"], data["period_end"])
    return bytes(pdf.output())


def _section(pdf: Any, text: str) -> None:
    pdf.ln(4)
    pdf.set_font("Helvetica", style="B", size=13)
    pdf.set_text_color(20, 40, 80)
    pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Helvetica", size=10)


def _heading(pdf: Any, tenant: str, title: str, data: dict[str, Any]) -> None:
    pdf.set_font("Helvetica", style="B", size=18)
    pdf.cell(0, 10, tenant, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=14)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.set_text_color(90, 90, 90)
    generated = datetime.fromisoformat(data["generated_at"]).strftime("%Y-%m-%d %H:%M UTC")
    pdf.cell(
        0,
        6,
        f"Period {data['period_start']} to {data['period_end']}; generated {generated}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_text_color(0, 0, 0)


def _distribution(pdf: Any, distribution: dict[str, Any]) -> None:
    _section(pdf, "Risk distribution")
    clients = distribution["clients"]
    average = distribution["average_score"]
    pdf.cell(
        0,
        6,
        f"{clients} active clients; average score "
        + ("-" if average is None else f"{average:.1f}")
        + " of 100",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    width = pdf.epw - 60
    for level in _LEVELS:
        count = distribution[level]
        share = count / clients if clients else 0.0
        y = pdf.get_y()
        pdf.cell(25, 7, f"{level.capitalize()} risk")
        pdf.set_fill_color(235, 235, 235)
        pdf.rect(pdf.l_margin + 25, y + 1, width, 5, style="F")
        if share:
            pdf.set_fill_color(*LEVEL_COLOURS[level])
            pdf.rect(pdf.l_margin + 25, y + 1, max(width * share, 0.5), 5, style="F")
        pdf.set_x(pdf.l_margin + 27 + width)
        pdf.cell(0, 7, f"{count} ({share:.0%})", new_x="LMARGIN", new_y="NEXT")


def _trend(pdf: Any, trend: list[dict[str, Any]]) -> None:
    _section(pdf, "Twelve-month trend")
    pdf.set_font("Helvetica", size=8)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(
        0,
        5,
        "Each month's last daily snapshot: share of clients per risk level (bars) and "
        "average score (line, 0-100).",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_text_color(0, 0, 0)
    if pdf.will_page_break(70):
        pdf.add_page()
    left, top, height = pdf.l_margin + 8, pdf.get_y() + 2, 50
    width = pdf.epw - 8
    slot = width / len(trend)
    pdf.set_draw_color(200, 200, 200)
    for tick in (0, 50, 100):
        y = top + height * (1 - tick / 100)
        pdf.line(left, y, left + width, y)
        pdf.set_xy(pdf.l_margin, y - 2)
        pdf.cell(7, 4, str(tick), align="R")
    points = []
    for index, month in enumerate(trend):
        x = left + index * slot + slot * 0.15
        bar = slot * 0.7
        if month.get("day") is not None and month["clients"]:
            y = top + height
            for level in _LEVELS:
                part = height * month[level] / month["clients"]
                y -= part
                if part > 0:
                    pdf.set_fill_color(*LEVEL_COLOURS[level])
                    pdf.rect(x, y, bar, part, style="F")
            points.append((x + bar / 2, top + height * (1 - month["average_score"] / 100)))
        else:
            pdf.set_fill_color(240, 240, 240)
            pdf.rect(x, top, bar, height, style="F")
        pdf.set_xy(left + index * slot, top + height + 1)
        year, number = month["month"].split("-")
        pdf.cell(slot, 4, date(int(year), int(number), 1).strftime("%b %y"), align="C")
    pdf.set_draw_color(20, 40, 80)
    pdf.set_line_width(0.6)
    for (x1, y1), (x2, y2) in itertools.pairwise(points):
        pdf.line(x1, y1, x2, y2)
    for x, y in points:
        pdf.set_fill_color(20, 40, 80)
        pdf.circle(x, y, 1.4, style="F")
    pdf.set_line_width(0.2)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_xy(pdf.l_margin, top + height + 6)
    pdf.set_font("Helvetica", size=10)
    if not points:
        pdf.cell(0, 6, "No snapshot yet in these twelve months.", new_x="LMARGIN", new_y="NEXT")


def _table(
    pdf: Any, widths: tuple[int, ...], aligns: tuple[str, ...], rows: list[list[str]]
) -> None:
    from fpdf.fonts import FontFace

    pdf.set_font("Helvetica", size=9)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(190, 190, 190)
    with pdf.table(
        col_widths=widths,
        text_align=aligns,
        headings_style=FontFace(emphasis="BOLD", fill_color=(225, 230, 240)),
        cell_fill_color=(246, 247, 250),
        cell_fill_mode="ROWS",
        line_height=5,
        padding=1,
    ) as table:
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(latin1(value))
    pdf.set_font("Helvetica", size=10)
    pdf.set_draw_color(0, 0, 0)


def _top_clients(pdf: Any, clients: list[dict[str, Any]]) -> None:
    _section(pdf, f"The {len(clients)} highest-risk clients" if clients else "Clients")
    if not clients:
        pdf.cell(0, 6, "No active client has a score yet.", new_x="LMARGIN", new_y="NEXT")
        return
    header = ["Client", "Score", "Risk", "Missing", "Expired", "Expiring", "Overdue"]
    rows = [header] + [
        [
            c["name"],
            str(c["score"]),
            c["level"],
            str(c["missing"]),
            str(c["expired"]),
            str(c["expiring"]),
            str(c["overdue"]),
        ]
        for c in clients
    ]
    aligns = ("LEFT", "RIGHT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT")
    _table(pdf, (60, 14, 16, 16, 16, 16, 16), aligns, rows)


def _overdue_filings(pdf: Any, filings: list[dict[str, Any]], period_end: str) -> None:
    _section(pdf, f"Open overdue filings ({len(filings)})")
    if not filings:
        text = f"No open filing was due on or before {period_end}."
        pdf.cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
        return
    pdf.set_font("Helvetica", size=8)
    pdf.cell(
        0,
        5,
        f"Draft or prepared filings due on or before {period_end}; days overdue at that date.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    header = ["Client", "Filing", "Period end", "Due", "Days overdue", "Status"]
    rows = [header] + [
        [
            f["client_name"],
            f["filing_type"],
            f["period_end"] or "",
            f["due_date"],
            str(f["days_overdue"]),
            f["status"],
        ]
        for f in filings
    ]
    aligns = ("LEFT", "LEFT", "LEFT", "LEFT", "RIGHT", "LEFT")
    _table(pdf, (52, 36, 24, 24, 22, 22), aligns, rows)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def render_csv(data: dict[str, Any]) -> bytes:
    """The report's CSV: one row per active client (module docstring)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for c in data["clients"]:
        writer.writerow(
            [
                _cell(c["id"]),
                _cell(c["name"]),
                c["score"],
                c["level"],
                c["missing"],
                c["expired"],
                c["expiring"],
                c["overdue"],
                _cell(c["computed_at"]),
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")
