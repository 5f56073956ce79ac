"""Stand-in for the Teal Agents framework's ``sk_agents`` (see README.md beside it)."""
