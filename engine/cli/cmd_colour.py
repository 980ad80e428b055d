"""``roto colourspaces``: list the OCIO config's colourspaces, or resolve one name.

>>> roto colourspaces                       # every active colourspace of the config   # doctest: +SKIP
>>> roto colourspaces rec709                # what a name, alias, role or shorthand means   # doctest: +SKIP
>>> roto colourspaces --ocio-config /show/config.ocio --json                                # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "colourspaces",
        aliases=["colorspaces"],
        help="list the OCIO config's colourspaces, or resolve a name",
        description="List the colourspaces of the OpenColorIO config the engine uses (the built-in "
                    "ocio://studio-config-latest unless $OCIO or --ocio-config says otherwise), with "
                    "their aliases and roles; or show what one name, alias, role or shorthand resolves to.",
    )
    p.add_argument("name", nargs="?", help="a colourspace name, alias, role or shorthand to resolve")
    p.add_argument("--ocio-config", metavar="PATH|URI", default=None,
                   help="OCIO config file or ocio:// URI (default: $OCIO, else ocio://studio-config-latest)")
    p.add_argument("--all", action="store_true", help="include inactive colourspaces")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.media import colour

    config = args.ocio_config
    if args.name:
        name = colour.canonical_colourspace(args.name, config)
        if args.json:
            print(json.dumps({"query": args.name, "colourspace": name, "config": colour.config_label(config)}))
        else:
            print(f"{args.name} -> {name}")
        return 0
    spaces = colour.list_colourspaces(config, include_inactive=args.all)
    if args.json:
        json.dump({"config": colour.config_label(config), "colourspaces": spaces}, sys.stdout, indent=2)
        print()
        return 0
    print(f"OCIO config: {colour.config_label(config)}")
    print("  * working space of the models   + added by the engine")
    for cs in spaces:
        mark = "*" if cs["working"] else ("+" if cs["added_by_engine"] else " ")
        extra = [f"{cs['family'] or '-'}", cs["encoding"] or "-"]
        if cs["reference"] == "display":
            extra.append("display-referred")
        line = f"{mark} {cs['name']}  [{', '.join(extra)}]"
        if cs["roles"]:
            line += f"  roles: {', '.join(cs['roles'])}"
        if cs["aliases"]:
            line += f"  aliases: {', '.join(cs['aliases'])}"
        print(line)
    print("Shorthands: linear, srgb, rec709, log/cineon, working, raw, pq, hlg (see `roto colourspaces NAME`).")
    return 0
