"""The TaskStore API: typed spec and status models, their validation, and the generated CRD.

Pure: no I/O except the CRD module's command line.
"""
