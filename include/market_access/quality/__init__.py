"""Per-department data-quality checks on Great Expectations 1.x: the rule catalogue, suites per
department, checkpoints validated in the warehouse, results in ops.quality_* and Data Docs."""

from market_access.quality.service import DepartmentSummary, RunSummary, run_quality

__all__ = ["DepartmentSummary", "RunSummary", "run_quality"]
