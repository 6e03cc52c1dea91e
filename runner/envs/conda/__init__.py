"""The ``conda`` environment manager: conda.yaml solved and installed with py-rattler."""
