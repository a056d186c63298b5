"""What every vrc gRPC daemon shares: listen addresses and the access rule, TLS files,
binding, health and reflection, stream budgets, structured logs.

``vrc-agent`` and ``vrc-controller`` both build their servers from here, so the
access rule (a Unix socket or loopback unless TLS or ``--insecure``) and the log
format are the same for both.
"""
