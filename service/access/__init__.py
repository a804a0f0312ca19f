"""Who may call and how much: API keys and case tokens (auth.py), making, revoking and
rotating keys (keys.py), rate limits, quotas and the decode budget (limits.py)."""
