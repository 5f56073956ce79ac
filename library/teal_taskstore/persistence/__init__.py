"""Task persistence backends and the factory that picks one from the environment."""
