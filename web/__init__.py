"""The Flask review dashboard and REST API (never imports torch)."""
