"""市场准入效能评估数据平台: the library behind the DAGs (sources, raw landing, simulators, …)."""

__version__ = "0.1.0"
