"""Pollsters of the local node (psutil)."""
