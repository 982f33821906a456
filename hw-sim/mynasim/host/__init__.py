"""The virtual clinic host, the pty pair that stands in for the serial cable, and the
port wrapper that puts line faults on the host's end."""

from mynasim.host.faulty_port import FaultyPort
from mynasim.host.pty import pty_pair
from mynasim.host.virtual_host import VirtualHost

__all__ = ["FaultyPort", "VirtualHost", "pty_pair"]
