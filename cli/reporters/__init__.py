"""Renderers: data in, text out, into a Console or file the caller passes."""
