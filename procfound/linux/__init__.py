"""Process-wide helpers for Linux: prctl and process titles."""
