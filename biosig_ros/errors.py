"""Errors that the nodes turn into a clear message instead of a traceback."""


class ConfigError(ValueError):
    """A parameter, configuration file or input file is invalid; the message names it."""
