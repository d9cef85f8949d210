# bash completion for custos(1): its commands, their subcommands and
# options, and the values of a few options.
#
# Everything offered is read from `custos --help` and `custos COMMAND --help`,
# so it follows the installed custos. Those only print: completing never runs
# a command, opens a store or reads evidence. Installed as
# <datadir>/bash-completion/completions/custos; to try it without
# installing: `source tools/custos.bash`.

# The --help text of `custos ARGS...`, kept for the next key press.
_custos_help() {
	local key="$_custos_bin $*"
	if [[ $key != "${_custos_help_key-}" ]]; then
		_custos_help_key=$key
		_custos_help_text=$("$_custos_bin" "$@" --help 2>/dev/null)
	fi
	printf '%s\n' "$_custos_help_text"
}

# The usage lines of the help text on stdin, one entry a line (continuation
# lines joined to the line they continue).
_custos_usage() {
	awk '
		NR > 1 && /^[[:space:]]*$/ { exit }
		/^ *\(each also takes/ { next }
		/^(usage: +)?custos / || /^ +custos / {
			if (e != "") print e
			e = $0; sub(/^usage: +/, "", e); sub(/^ +/, "", e); next
		}
		{ e = e " " $0 }
		END { if (e != "") print e }'
}

# Called by bash with the command, the word before the cursor (up to the
# cursor) and the word before it; COMP_WORDS holds the line's words.
_custos() {
	local cur=${2-${COMP_WORDS[COMP_CWORD]}} prev=${3-${COMP_WORDS[COMP_CWORD - 1]}}
	local i=1 cmd='' sub='' subs help usage opts w
	_custos_bin=${COMP_WORDS[0]}
	COMPREPLY=()
	# bash splits --opt=VALUE into --opt, "=" and VALUE: the option is the
	# word before the "=", the value what follows it.
	if [[ $cur == = ]]; then
		cur='' prev=${COMP_WORDS[COMP_CWORD - 1]}
	elif [[ $prev == = ]]; then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi

	# The command: the first word that is not --store DIR (or --store=DIR,
	# which bash splits at the "=").
	while ((i < COMP_CWORD)); do
		case ${COMP_WORDS[i]} in
		--store)
			if [[ ${COMP_WORDS[i + 1]-} == = ]]; then ((i += 3)); else ((i += 2)); fi
			continue
			;;
		esac
		cmd=${COMP_WORDS[i]}
		break
	done

	# An option's value (given as a separate word).
	case $prev in
	--store)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return
		;;
	--stage)
		mapfile -t COMPREPLY < <(compgen -W '立案 调查 取证 审查 决定 送达 执行 filing
			investigation collection review decision service enforcement' -- "$cur")
		return
		;;
	--party)
		mapfile -t COMPREPLY < <(compgen -W 'person organisation' -- "$cur")
		return
		;;
	esac

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W '--store --help --version' -- "$cur")
		else
			w=$(_custos_help | awk '/^commands:/ { f = 1; next }
				f && /^  [a-z]/ { print $1 } f && /^$/ { exit }')
			mapfile -t COMPREPLY < <(compgen -W "$w" -- "$cur")
		fi
		return
	fi

	help=$(_custos_help "$cmd")
	usage=$(printf '%s\n' "$help" | _custos_usage)
	# Its subcommands: the lower-case words after "custos COMMAND" in its usage.
	subs=$(printf '%s\n' "$usage" |
		awk -v c="$cmd" '$1 == "custos" && $2 == c && $3 ~ /^[a-z][a-z-]*$/ { print $3 }' |
		sort -u)
	if [[ -n $subs ]]; then
		for w in $subs; do
			[[ ${COMP_WORDS[i + 1]-} == "$w" && $((i + 1)) -lt $COMP_CWORD ]] && sub=$w
		done
		if [[ -z $sub && $((i + 1)) -eq $COMP_CWORD && $cur != -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
			return
		fi
	fi

	if [[ $cur == -* ]]; then
		if [[ -n $sub ]]; then
			# That subcommand's options, and those its usage says each takes.
			opts=$(printf '%s\n' "$usage" |
				awk -v c="$cmd" -v s="$sub" '$2 == c && $3 == s' |
				grep -oE -- '--[a-z][a-z0-9-]*')
			opts+=" $(printf '%s\n' "$help" | grep -E '^ *\(each also takes' |
				grep -oE -- '--[a-z][a-z0-9-]*')"
		elif [[ -n $subs ]]; then
			# Before a subcommand: only those of the forms without one.
			opts=$(printf '%s\n' "$usage" |
				awk -v c="$cmd" '$2 == c && $3 !~ /^[a-z][a-z-]*$/' |
				grep -oE -- '--[a-z][a-z0-9-]*')
		else
			# Those of its own usage lines and of the lines that describe an
			# option (not those the text names of other commands).
			opts=$( {
				printf '%s\n' "$usage" | awk -v c="$cmd" '$2 == c'
				printf '%s\n' "$help" | grep -E '^ +(-[a-zA-Z], )?--[a-z]'
			} | grep -oE -- '--[a-z][a-z0-9-]*')
		fi
		opts+=' --help'  # every command takes it
		mapfile -t COMPREPLY < <(compgen -W "$(tr -s ' ' '\n' <<<"$opts" | sort -u)" -- "$cur")
		return
	fi
	# Files, directories, ids and case numbers: files are what can be offered.
	compopt -o filenames 2>/dev/null
	mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}

complete -F _custos custos
