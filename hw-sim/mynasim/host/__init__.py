"""The virtual clinic host and the pty pair that stands in for the serial cable."""

from mynasim.host.pty import pty_pair
from mynasim.host.virtual_host import VirtualHost

__all__ = ["VirtualHost", "pty_pair"]
