#!/bin/sh
# Kept so existing instructions keep working; the implementation is the cross-platform
# grant_graph_permissions.py beside this file (same options, see --help).
exec python3 "$(dirname "$0")/grant_graph_permissions.py" "$@"
