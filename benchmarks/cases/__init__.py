"""Benchmark cases, one module per capability; MODULES fixes their order in the table."""

MODULES = (
    "cli_overhead",
    "python_env",
    "sklearn_warm",
    "conda_env",
    "docker_rerun",
    "store_metrics",
    "store_list",
    "store_scale",
    "reconcile_live",
    "workflow",
    "concurrent_runs",
    "server_api",
    "ui_pages",
    "mlflow_api",
)
