"""The web UI of `runner server`: server-rendered pages over the store, under /ui."""
