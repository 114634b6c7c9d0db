"""Builds the runtime's USDT probe module (C, <sys/sdt.h>); the rest is in pyproject.toml."""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "msprof.runtime._usdt",
            sources=["runtime/_usdt.c"],
            extra_compile_args=["-O2"],
        )
    ]
)
