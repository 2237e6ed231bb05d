"""Reference data shipped with cibwatch (see README.md here): read with importlib.resources."""
