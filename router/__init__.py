"""vrc router engine: a sans-I/O IPv4 router.

The engine takes frames, API calls and the time as inputs and returns frames
to transmit, events and its next deadline. It never opens a socket, starts a
thread, sleeps or reads the clock; ``agents/`` supplies all of that.
"""
