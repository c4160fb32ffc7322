"""Domain services: customers, payments, refunds, plans, subscriptions, disputes.

Services take their database session and Stripe gateway as arguments and never
commit: the request or job that owns the unit of work does.
"""
