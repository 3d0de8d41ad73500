"""JSON Schemas of a call directory's meta.json and events.jsonl lines, generated from the classes
by roleplay.recording.schemagen; a package so they ship as package data."""
