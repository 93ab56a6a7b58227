"""panelpaint's shared, torch-free core: settings, job store, storage, page processing and the command line."""

__version__ = "0.1.0"
