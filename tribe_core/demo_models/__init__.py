"""Tiny random models of the real architectures, for the demo and the tests.

``python -m tribe_core.demo_models OUT_DIR`` builds every model the demo
configs name (deterministic, seconds on a CPU, nothing downloaded).
"""
