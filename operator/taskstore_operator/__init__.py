"""The TaskStore operator: reconciles TaskStore resources and injects agent environment."""
