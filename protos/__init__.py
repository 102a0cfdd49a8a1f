"""Protocol definitions and their generated stubs (regenerate: ``python -m protos.generate``)."""
