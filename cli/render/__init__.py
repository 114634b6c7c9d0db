"""Terminal renderers that take data and a width and return rich Text."""
