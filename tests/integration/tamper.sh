#!/bin/bash
. "$(dirname "$0")/lib.sh"
echo "# not written yet"
exit 77
