"""Offline training: fine-tune, evaluate and export model directories for `classifier`.

Entry point: ``python -m training {build,train,export,evaluate,tiny}`` (training/cli.py).
"""
