#!/bin/sh
# Fails if a banned C function (unbounded or unsafe on hostile input) is used
# in lib/, daemon/ or tools/: sprintf, strcpy, strcat, strtok, atoi, gets.
cd "${CUSTOS_SRC:?}" || exit 2
hits=$(grep -nE '(^|[^_a-z])(sprintf|vsprintf|strcpy|strcat|strtok|atoi|gets)[[:space:]]*\(' \
	lib/*.c lib/*.h daemon/*.c daemon/*.h tools/*.c 2>/dev/null)
if [ -n "$hits" ]; then
	echo "not ok 1 - banned functions used:"
	echo "$hits" | sed 's/^/#   /'
	echo "1..1"
	exit 1
fi
echo "ok 1 - no banned function in lib/, daemon/, tools/"
echo "1..1"
