"""One module per ``minibitnet`` subcommand: ``add_parser(subparsers)`` and ``run(args)``."""
