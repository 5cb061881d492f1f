"""Pieces shared by every domain app: the domain error types and observability helpers."""
