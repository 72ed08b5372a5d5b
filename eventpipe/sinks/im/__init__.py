"""What the IM bot receivers share (see README.md here): config base, sink base, message text.

No imports: the bot modules load what they use.
"""
