"""Rendering of results: self-contained HTML report and JUnit XML."""
