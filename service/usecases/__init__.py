"""The use cases, one module each, all running on a service.runtime.Runtime: check.py
(single, batch and stream checks), cases.py (a victim's case), review.py (moderators'
hits), disputes.py (entries several tenants rejected). The servers call these; these
combine media, matcher, policy, access and store."""
