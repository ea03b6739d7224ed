"""The report: the original LowDINO table regenerated from runs, beside the published figures.

identity (which model a run measured) -> pooling (cells over seeds) + published (reference rows)
-> assembly (`build_report`: rows, protocol notes, figures).
"""

from server.reporting.report.assembly import build_report

__all__ = ["build_report"]
