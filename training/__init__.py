"""Offline training: fine-tune, evaluate and export model directories for `classifier`."""
