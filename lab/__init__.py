"""The one-machine lab: network namespaces, veth segments and processes, all owned and undone.

``vrc up`` builds a cluster in network namespaces on one machine, and the
integration and end-to-end tests build theirs the same way: this package is
the one implementation both use.

* :mod:`lab.netns` — :class:`Lab` makes namespaces and veth pairs with names
  unique to the run, starts processes in them, and removes everything it
  made (processes by PID first, then the namespaces); every command and
  every wait is bounded in time.
* :mod:`lab.procs` — process records that survive the process that wrote
  them (PID plus the kernel's start time, so a recycled PID is never
  signalled), the argv of our console scripts, dying with the parent.
* :mod:`lab.state` — the run's state file: what was made, written before it
  is made, so that a run that crashed (even on SIGKILL) can be cleaned up
  later by ``vrc down`` or ``vrc up --clean``.
* :mod:`lab.chain` — the chain topology of ``vrc up``: N router hosts in a
  line, a kernel host at each end, one /24 per segment (a pure plan, then
  built on a :class:`Lab`).

Nothing here touches the root namespace's interfaces or routes: veth pairs
are created inside the namespaces they belong to.
"""

from lab.netns import Lab, LabError, Netns, netns_exists, require_root_and_tools, wait_until
from lab.procs import ProcessRecord, console_argv

__all__ = ["Lab", "LabError", "Netns", "ProcessRecord", "console_argv", "netns_exists",
           "require_root_and_tools", "wait_until"]
