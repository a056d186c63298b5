"""The ``vrc`` command line.

``main.py`` is the entry point (the root parser, the channel, errors and exit
codes); ``agent.py`` the agent half (one command per agent API call);
``output.py`` how results print; ``options.py`` what the command groups share.
``cluster.py`` the cluster half (``vrc --controller``: the controller's commands).
"""
