"""Batch scoring: news feeds and article collections into scored tables (local or Ray), then reports."""
