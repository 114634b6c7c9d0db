"""Tests of msprof.runtime (a package, so its conftest and helpers keep their own names)."""
