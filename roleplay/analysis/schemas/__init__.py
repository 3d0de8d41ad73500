"""JSON Schema of the analysis document (analysis.json); a package so it ships as package data."""
