"""Resource modules of the payments half (one module per Stripe resource)."""
