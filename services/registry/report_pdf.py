"""A certification report as PDF (fpdf2): pure, from a snapshot's figures to bytes.

The core PDF fonts know Latin-1 only: other characters are written as '?' (a report must render
whatever a scanned repository put in its findings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

SEVERITIES = ("critical", "high", "medium", "low")
PASS_FILL = (220, 242, 220)
FAIL_FILL = (248, 220, 220)


@dataclass(frozen=True)
class Control:
    """One control's result as the report lists it."""

    control_id: str
    name: str
    passed: bool
    severity: str
    message: str


@dataclass(frozen=True)
class ReportData:
    """What a report shows of one snapshot."""

    mcp_name: str
    version: str
    scanned_at: datetime
    grade: str
    scores: dict[str, int]  # global, security, supply_chain, maturity
    findings: dict[str, int]  # by severity, and "total"
    controls: Sequence[Control]
    versions: dict[str, str]  # toolchain, scoring, controls catalog
    generated_at: datetime


def latin1(text: str) -> str:
    """`text` as the core fonts can write it."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render(data: ReportData) -> bytes:
    """The report's PDF bytes."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(latin1(f"Certification report: {data.mcp_name} {data.version}"))
    pdf.set_creator("Switchboard registry")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    _heading(pdf, data)
    _scores(pdf, data)
    _findings(pdf, data)
    _controls(pdf, data)
    return bytes(pdf.output())


def _line(pdf: FPDF, text: str, size: float = 10, style: str = "", height: float = 6) -> None:
    """One line of text, then the next line."""
    pdf.set_font("Helvetica", style=style, size=size)
    pdf.cell(0, height, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _heading(pdf: FPDF, data: ReportData) -> None:
    """Title, MCP, version and dates."""
    _line(pdf, "Certification report", size=18, style="B", height=10)
    _line(pdf, f"MCP: {data.mcp_name}", size=12, style="B")
    _line(pdf, f"Version: {data.version}")
    _line(pdf, f"Snapshot date: {data.scanned_at:%Y-%m-%d %H:%M UTC}")
    _line(pdf, f"Generated: {data.generated_at:%Y-%m-%d %H:%M UTC}")
    versions = ", ".join(f"{k} {v}" for k, v in data.versions.items())
    _line(pdf, f"Versions: {versions}", size=8)
    pdf.ln(3)


def _scores(pdf: FPDF, data: ReportData) -> None:
    """The grade and the four scores."""
    _line(pdf, f"Grade: {data.grade}", size=16, style="B", height=9)
    pdf.set_font("Helvetica", size=10)
    with pdf.table(col_widths=(60, 30), width=90, align="LEFT") as table:
        table.row(["Score", "Value"])
        for name in ("global", "security", "supply_chain", "maturity"):
            table.row([name.replace("_", " ").capitalize(), f"{data.scores.get(name, 0)}/100"])
    pdf.ln(3)


def _findings(pdf: FPDF, data: ReportData) -> None:
    """Findings by severity."""
    _line(pdf, "Findings by severity", size=12, style="B")
    pdf.set_font("Helvetica", size=10)
    with pdf.table(col_widths=(60, 30), width=90, align="LEFT") as table:
        table.row(["Severity", "Findings"])
        for severity in SEVERITIES:
            table.row([severity.capitalize(), str(data.findings.get(severity, 0))])
        table.row(["Total", str(data.findings.get("total", 0))])
    pdf.ln(3)


def _controls(pdf: FPDF, data: ReportData) -> None:
    """Every control with pass/fail, severity and message."""
    failed = sum(1 for c in data.controls if not c.passed)
    _line(pdf, f"Controls ({len(data.controls)}, {failed} failed)", size=12, style="B")
    pdf.set_font("Helvetica", size=8)
    with pdf.table(col_widths=(40, 14, 18, 118), text_align="LEFT") as table:
        table.row(["Control", "Result", "Severity", "Message"])
        for control in data.controls:
            fill = PASS_FILL if control.passed else FAIL_FILL
            row = table.row(style=None)
            row.cell(latin1(f"{control.control_id}\n{control.name}"))
            row.cell("PASS" if control.passed else "FAIL", style=FontFace(fill_color=fill))
            row.cell(control.severity)
            row.cell(latin1(control.message or "-"))
