"""Helpers shared by test packages (imported as `helpers.<module>`: tests/ is on sys.path)."""
