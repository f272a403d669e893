"""Data pipelines of the examples (plain Python / torch; no fairseq registration)."""
