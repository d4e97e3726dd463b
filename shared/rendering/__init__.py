"""Pure rendering of alert records: Teams Adaptive Cards, e-mails, digests.

No I/O here: delivery (webhook POST, Graph ``sendMail``, retries) lives in adapters and
services and calls these functions. Jinja2 is imported inside the e-mail functions, so
importing this package stays cheap for cold starts.
"""
