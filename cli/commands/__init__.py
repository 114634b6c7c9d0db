"""One module per ``msprof`` subcommand, each exposing ``register(app)``."""
