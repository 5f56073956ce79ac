"""Task persistence for Teal Agents."""
