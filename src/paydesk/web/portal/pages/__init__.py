"""The portal's pages, one module-level ``router`` per page group."""
