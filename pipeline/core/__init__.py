"""The core: models, errors, configuration, runtime, the issue's lifecycle, file and text helpers."""
