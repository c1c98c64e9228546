"""The tasks plugin: a to-do list per user."""
