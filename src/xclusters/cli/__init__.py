"""Command-line interface: ``xclusters <command>`` (see ``xclusters --help``)."""
