"""pktpath: what does this Linux host do to this packet, and why?

Walks a packet through a host snapshot's netfilter hooks, conntrack, NAT and policy
routing offline, as the kernel would, and reports the kernel's own TRACE lines.
"""

__version__ = "0.1.0"
