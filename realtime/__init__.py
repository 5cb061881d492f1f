"""Realtime core: one websocket, authorized topics, publish on commit, replay on reconnect.

Domain code only ever calls :func:`realtime.publish.publish`. See docs/protocol.md and
docs/architecture.md.
"""
