#!/bin/bash
# Bash completion (tools/custos.bash): it offers the commands custos --help
# lists, the subcommands and options of each (a subcommand's own options
# only), the values of --stage, --party and --store, and files elsewhere;
# every option it offers is one the command's parser accepts; and completing
# runs custos only with --help (never a command, never on a store).
. "$(dirname "$0")/lib.sh"
: "${CUSTOS_SRC:?}"

SPY="$WORK/bin"
mkdir -p "$SPY" "$WORK/here/adir"
: >"$WORK/here/afile"
# The completion runs `custos` from PATH: this one notes each call first.
printf '#!/bin/sh\nprintf "%%s\\n" "$*" >>"%s"\nexec "%s" "$@"\n' "$WORK/calls" "$CUSTOS" \
	>"$SPY/custos"
chmod +x "$SPY/custos"
PATH="$SPY:$PATH"
bash -n "$CUSTOS_SRC/tools/custos.bash"
t_ok $? "the completion script parses"
. "$CUSTOS_SRC/tools/custos.bash"
complete -p custos 2>/dev/null | grep -q -- '-F _custos'
t_ok $? "sourcing it registers the completion for custos"

# comp LINE [REST]: COMPREPLY for the cursor at the end of LINE, with REST
# the rest of the word under the cursor, as bash calls the function: words
# split at blanks, "=" a word of its own; $2 the current word up to the
# cursor, $3 the word before. got: them sorted, one a line.
comp() {
	local line=${1//=/ = } rest=${2-}
	[[ $1 == *= ]] && line=${line% }
	read -ra COMP_WORDS <<<"$line"
	COMP_CWORD=${#COMP_WORDS[@]}
	if [[ $line == *' ' ]]; then COMP_WORDS+=(''); else COMP_CWORD=$((COMP_CWORD - 1)); fi
	local cur=${COMP_WORDS[COMP_CWORD]}
	COMP_WORDS[COMP_CWORD]=$cur$rest
	COMPREPLY=()
	_custos custos "$cur" "${COMP_WORDS[COMP_CWORD - 1]}"
	got=$(printf '%s\n' "${COMPREPLY[@]}" | sort)
}
# offers LINE DESC WORD...: each WORD is among the completions of LINE.
# offers_not LINE DESC WORD...: none is.
offers() {
	local line=$1 desc=$2 w rc=0
	shift 2
	comp "$line"
	for w in "$@"; do
		grep -qxF -- "$w" <<<"$got" || { echo "#   '$w' not offered"; rc=1; }
	done
	t_ok $rc "$desc"
}
offers_not() {
	local line=$1 desc=$2 w rc=0
	shift 2
	comp "$line"
	for w in "$@"; do
		grep -qxF -- "$w" <<<"$got" && { echo "#   '$w' offered"; rc=1; }
	done
	t_ok $rc "$desc"
}

cd "$WORK/here" || exit 1
"$CUSTOS" --help | sed -n '/^commands:/,/^$/p' | awk '/^  [a-z]/ { print $1 }' | sort \
	>"$WORK/commands"
comp "custos "
[ "$(wc -l <"$WORK/commands")" -ge 40 ] && [ "$got" = "$(cat "$WORK/commands")" ]
t_ok $? "custos <TAB>: exactly the commands custos --help lists"
comp "custos in"
[ "$got" = "$(printf 'ingest\ninit')" ]
t_ok $? "custos in<TAB>: init and ingest"
comp "custos --store /tmp "
[ "$got" = "$(cat "$WORK/commands")" ]
t_ok $? "custos --store DIR <TAB>: the commands"
comp "custos --store=/tmp "
[ "$got" = "$(cat "$WORK/commands")" ]
t_ok $? "custos --store=DIR <TAB>: the commands"
comp "custos --store "
[ "$got" = adir ]
t_ok $? "custos --store <TAB>: directories only"
comp "custos --store="
[ "$got" = adir ]
t_ok $? "custos --store=<TAB>: directories only"
comp "custos --store=a"
[ "$got" = adir ]
t_ok $? "custos --store=a<TAB>: adir"
comp "custos ingest --stage=fil"
[ "$got" = filing ]
t_ok $? "custos ingest --stage=fil<TAB>: filing"
comp "custos in" "gest"
[ "$got" = "$(printf 'ingest\ninit')" ]
t_ok $? "custos in<TAB>gest (cursor inside the word): what fits the part before it"
comp "custos case "
[ "$got" = "$(printf '%s\n' add close list open remove seal show)" ]
t_ok $? "custos case <TAB>: its subcommands"
offers "custos case open 2026-1 --" "case open --<TAB>: its options" \
	--category --title --department --party --store --help
offers_not "custos case open 2026-1 --" "... and not another subcommand's" --stage --reason
offers "custos case add 2026-1 ID --" "case add --<TAB>: its options" --stage --reason --store
offers_not "custos case add 2026-1 ID --" "... and not another subcommand's" --party --csv
offers "custos --store /tmp ingest --" "ingest --<TAB>: every option its --help describes" \
	--case --category --stage --officer --device --recorded-at --recorded-end --store --json
offers "custos fixity --" "fixity --<TAB> (before a subcommand): the options of that form" \
	--overdue --period --json
offers_not "custos media --" "media --<TAB> (before a subcommand): not process's or get's" \
	--timeout --access --approval
offers "custos disclosure due --" "disclosure due --<TAB>: with those its usage says each takes" \
	--json --csv --socket --store
offers "custos ingest --stage " "--stage <TAB>: the stages, in Chinese and English" \
	立案 取证 执行 filing collection enforcement
offers "custos case open 2026-1 --party " "--party <TAB>: person, organisation" person organisation
comp "custos ingest a"
[ "$got" = "$(printf 'adir\nafile')" ]
t_ok $? "custos ingest a<TAB>: the files and directories there"
offers_not "custos ingest --" "no option that only other commands have" --action --history
offers "custos ingest --he" "--help, for a command without subcommands too" --help
offers_not "custos approve REQ --" "approve: not deny's options" --reason
offers_not "custos deny REQ --" "deny: not approve's options" --until

# Each subcommand the manual page names (custos CMD SUB) is offered.
awk '/^\.B custos [a-z-]+ [a-z-]+( |$)/ { print $3, $4; next }
	/^\.B custos [a-z-]+$/ { c = $3; next }
	/^\.RB \( [a-z-]+( \| [a-z-]+)+ \)$/ && c != "" { for (i = 3; i < NF; i += 2) print c, $i }
	{ c = "" }' "$CUSTOS_SRC/docs/man/custos.1" | sort -u >"$WORK/man-subs"
rc=0
while read -r c s; do
	comp "custos $c "
	grep -qxF -- "$s" <<<"$got" || { echo "#   custos $c $s: not offered"; rc=1; }
done <"$WORK/man-subs"
[ "$(wc -l <"$WORK/man-subs")" -ge 25 ] && [ $rc = 0 ]
t_ok $? "each of the manual's $(wc -l <"$WORK/man-subs") subcommands is offered"

# A command that needs a subcommand first takes no option before it but --help.
rc=0
for c in case officers hold disclosure retention; do
	comp "custos $c --"
	[ "$got" = --help ] || { echo "#   custos $c --<TAB>: $got" | tr '\n' ' '; echo; rc=1; }
done
t_ok $rc "case, officers, hold, disclosure, retention --<TAB>: --help alone"

# Every option offered, for every command and subcommand, is one its parser
# knows: `custos CMD [SUB] OPT 1 --help` prints help, or refuses the value 1
# naming OPT, unless OPT is unknown (or not taken there).
n=0 unknown=0
while read -r c; do
	comp "custos $c "
	subs=()
	[[ $got != *adir* ]] && mapfile -t subs <<<"$got"
	for s in "" "${subs[@]}"; do
		comp "custos $c ${s:+$s }--"
		for o in $got; do
			[ "$o" = --help ] && continue
			n=$((n + 1))
			# Refused other than for its value ("custos: --opt takes ..."): unknown.
			if ! err=$("$CUSTOS" "$c" ${s:+"$s"} "$o" 1 --help 2>&1 >/dev/null) &&
				[[ $(head -1 <<<"$err") != "custos: $o "* ]]; then
				echo "#   custos $c $s $o 1 --help: $(head -1 <<<"$err")"
				unknown=$((unknown + 1))
			fi
		done
	done
done <"$WORK/commands"
[ "$n" -ge 150 ] && [ "$unknown" = 0 ]
t_ok $? "each of the $n options offered is known to its command's parser"

# Completing ran custos only to print help (the loop above ran it directly).
bad=$(grep -vE -- '(^| )--help$' "$WORK/calls")
[ -s "$WORK/calls" ] && [ -z "$bad" ]
t_ok $? "completing ran custos only with --help ($(wc -l <"$WORK/calls") calls)"
[ -n "$bad" ] && printf '#   %s\n' "$bad"
t_done
