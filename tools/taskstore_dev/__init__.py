"""Development tooling beside the product: local control plane, demo, generators.

Never shipped in a wheel or the image; it reads and writes the repository it lives in.
"""
