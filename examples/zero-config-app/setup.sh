#!/bin/sh
# System setup: runs first, before the Python dependencies are installed (kiln plan puts it there).
set -e
mkdir -p /var/lib/greeter
echo "greeter data" > /var/lib/greeter/README
