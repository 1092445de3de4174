"""Thin Ray shells around the core objects (the only package importing ray)."""
