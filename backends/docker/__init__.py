"""The Docker backend: layered cached images, labelled containers, mount and env policy."""
