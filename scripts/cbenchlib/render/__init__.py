"""Presenting judged results: tables, charts, the report template and its sections, exports. Imports format and analysis, never run."""
