"""Hash types as plug-ins: one module per type, listed in registry.py (docs/ARCHITECTURE.md)."""
