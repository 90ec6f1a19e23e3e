"""Versioned PostgreSQL schema: ``NNNN_name.sql`` files, applied in order, each once."""
