#!/usr/bin/env python3
"""Prints the include graph between the project's libraries and fails on an
edge the architecture does not allow (dependencies point one way:
text <- smtp <- conf <- auth/policy <- spool <- delivery/console <- server <- cli;
metrics (std only) and cluster (conf only) are used by delivery and server).
Each library is a folder; a file belongs to the deepest library folder that
holds it. Usage: include_graph.py [SOURCE_DIR]"""
import os
import re
import sys

# folder -> library, deepest first when matching
LIBRARIES = {
    "smtp/text": "text",
    "smtp": "smtp",
    "conf/toml_reader": "toml_reader",
    "conf": "conf",
    "auth": "auth",
    "policy": "policy",
    "relay/spool": "spool",
    "relay/metrics": "metrics",
    "relay/cluster": "cluster",
    "relay/delivery": "delivery",
    "relay/console": "console",
    "relay/server": "server",
    "relay/cli": "cli",
    "relay": "subrelay",  # relay/main.cpp: the executable
}

# library -> the libraries it may include
ALLOWED = {
    "text": set(),
    "toml_reader": set(),
    "smtp": {"text"},
    "conf": {"text", "smtp", "toml_reader"},
    "auth": {"text", "conf"},
    "spool": set(),
    "metrics": set(),
    "cluster": {"conf"},
    "policy": {"text", "smtp", "conf", "toml_reader", "spool"},
    "delivery": {"text", "smtp", "conf", "auth", "spool", "metrics", "cluster"},
    "console": {"text", "smtp", "conf", "toml_reader", "auth", "policy", "spool"},
    "server": {"text", "smtp", "conf", "auth", "policy", "spool", "delivery", "metrics", "cluster", "console"},
    "cli": {"text", "smtp", "conf", "auth", "policy", "spool", "delivery", "metrics", "cluster", "server", "console"},
    "subrelay": {"cli"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def library_of(path):
    for folder in sorted(LIBRARIES, key=len, reverse=True):
        if path == folder or path.startswith(folder + "/"):
            return LIBRARIES[folder]
    return None


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../.."))
    edges = {}  # (from, to) -> first file that makes the edge
    for top in ("smtp", "conf", "auth", "policy", "relay"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if not name.endswith((".hpp", ".cpp")):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), root)
                src = library_of(path)
                with open(os.path.join(root, path), encoding="utf-8") as f:
                    for header in INCLUDE.findall(f.read()):
                        dst = library_of(header)
                        if dst is None or dst == src:
                            continue
                        edges.setdefault((src, dst), "%s includes %s" % (path, header))
    bad = []
    for (src, dst) in sorted(edges):
        allowed = dst in ALLOWED.get(src, set())
        print("%-12s -> %-12s %s" % (src, dst, "" if allowed else "NOT ALLOWED (%s)" % edges[(src, dst)]))
        if not allowed:
            bad.append((src, dst))
    if bad:
        print("\n%d include(s) point the wrong way; see ../shared/ARCHITECTURE.md's table." % len(bad))
        return 1
    print("\n%d edges between %d libraries, all allowed" % (len(edges), len({s for s, _ in edges} | {d for _, d in edges})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
