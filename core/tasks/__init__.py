"""Task types: one module per type, saying how a task of that type is launched and what its output means.

Task processes import `core.tasks.runtime` at start-up, so this package imports nothing itself.
"""
