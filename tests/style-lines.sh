#!/bin/sh
# Fails on a line of C wider than 100 columns in lib/, daemon/, tools/ or
# tests/unit/. A tab counts to the next multiple of 8: the code was written
# to tab width 8 (continuation lines are a tab plus 4 spaces, and the
# "within 100 columns" commits shortened lines that are over only at width
# 8). A character counts once, a wide (CJK) one twice, as an editor and
# clang-format show it.
cd "${CUSTOS_SRC:?}" || exit 2
hits=$(perl -CSD -ne '
	chomp;
	my $col = 0;
	for my $ch (split //) {
		if ($ch eq "\t") {
			$col = int($col / 8) * 8 + 8;
		} else {
			$col += $ch =~ /\p{East_Asian_Width=Wide}|\p{East_Asian_Width=Fullwidth}/ ? 2 : 1;
		}
	}
	print "$ARGV:$.: $col columns\n" if $col > 100;
	close ARGV if eof;
' lib/*.c lib/*.h lib/include/custos/*.h daemon/*.c daemon/*.h tools/*.c tools/*.h \
	tests/unit/*.c tests/tap.h 2>/dev/null)
if [ -n "$hits" ]; then
	echo "not ok 1 - C lines wider than 100 columns (tab width 8):"
	echo "$hits" | sed 's/^/#   /'
	echo "1..1"
	exit 1
fi
echo "ok 1 - every C line in lib/, daemon/, tools/, tests/unit/ within 100 columns"
echo "1..1"
