"""Benchmarks of df_gmr against oslo.reports: ``python -m benchmarks``.

See benchmarks/README.md for what each measurement means.
"""
