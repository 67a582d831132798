"""The operator's commands: python -m bot admin | reconcile | refunds."""
