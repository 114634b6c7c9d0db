"""Exports of a profile to formats other tools read: one module per format."""
