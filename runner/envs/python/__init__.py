"""The uv environment manager: python_env (and conda pip sections) locked and built with uv."""
