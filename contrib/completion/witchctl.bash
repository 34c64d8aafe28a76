# bash completion for witchctl(1)                         -*- shell-script -*-
#
# Installed as $(datadir)/bash-completion/completions/witchctl, where
# bash-completion loads it on demand; or source it from ~/.bashrc.
# Needs nothing but bash, grep and sed.  The endpoint of "call" is
# completed from the "info" of the server the command line names (with a
# timeout of half a second), or else from the built-in endpoints; the id of
# "kill-client" from its "clients" (a trusted connection only).

# Endpoint names of the server, one a line; $@: its global options.
_witchctl_endpoints()
{
	local out

	out=$("${COMP_WORDS[0]}" "$@" -t 0.5 --json info 2>/dev/null) ||
	    return 1
	out=${out#*\"endpoints\":\{}
	out=${out%%\}*}
	printf '%s\n' "$out" | grep -o '"[^"]*":\[' | sed 's/^"//; s/":\[$//'
}

_witchctl()
{
	local cur prev cmd i word
	local global_opts="-H --host -p --port -U --unix -t --timeout -j --json
	    -k --key-file -h --help -V --version"
	local commands="ping echo call info status peers peer-broadcast
	    peer-send peer-query events stats clients kill-client monitor
	    discover"
	local builtins="ping echo info status peer_list stats hello cancel
	    clients kill_client monitor peer_broadcast peer_send peer_query
	    subscribe unsubscribe"
	local -a conn=()

	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}

	# Find the command: the first word that is not an option or the
	# value of a global option that takes one.
	cmd=
	i=1
	while [ "$i" -lt "$COMP_CWORD" ]; do
		word=${COMP_WORDS[i]}
		case $word in
		-H | --host | -p | --port | -U | --unix | -k | --key-file)
			conn+=("$word" "${COMP_WORDS[i + 1]}")
			i=$((i + 1)) ;;
		-t | --timeout)
			i=$((i + 1)) ;;
		--host=* | --port=* | --unix=* | --key-file=* | -H?* | -p?* | \
		    -U?* | -k?*)
			conn+=("$word") ;;
		-*) ;;
		*)
			cmd=$word
			break ;;
		esac
		i=$((i + 1))
	done

	if [ -z "$cmd" ]; then
		case $prev in
		-H | --host)
			COMPREPLY=($(compgen -A hostname -- "$cur"))
			return ;;
		-U | --unix | -k | --key-file)
			COMPREPLY=($(compgen -f -- "$cur"))
			compopt -o filenames 2>/dev/null
			return ;;
		-p | --port | -t | --timeout)
			return ;;
		esac
		case $cur in
		-*) COMPREPLY=($(compgen -W "$global_opts" -- "$cur")) ;;
		*) COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
		esac
		return
	fi

	case $cmd in
	ping)
		case $prev in
		-c | --count | -i | --interval) return ;;
		esac
		COMPREPLY=($(compgen -W "-c --count -i --interval -j --json
		    -h --help" -- "$cur")) ;;
	events)
		case $prev in
		-n | --count | -t | --timeout) return ;;
		esac
		COMPREPLY=($(compgen -W "-n --count -t --timeout -h --help" \
		    -- "$cur")) ;;
	peer-send)
		# The peer: a name the server lists.
		case $cur in
		-*) COMPREPLY=($(compgen -W "-h --help" -- "$cur")) ;;
		*)
			if [ "$COMP_CWORD" -eq $((i + 1)) ]; then
				word=$("${COMP_WORDS[0]}" "${conn[@]}" -t 0.5 \
				    peers 2>/dev/null | sed '1d; s/ .*//')
				COMPREPLY=($(compgen -W "$word" -- "$cur"))
			fi ;;
		esac ;;
	peer-query)
		if [ "$COMP_CWORD" -eq $((i + 1)) ]; then
			case $cur in
			-*) COMPREPLY=($(compgen -W "-h --help" -- "$cur")) ;;
			*)
				word=$(_witchctl_endpoints "${conn[@]}") ||
				    word=$builtins
				COMPREPLY=($(compgen -W "$word" -- "$cur")) ;;
			esac
		fi ;;
	peer-broadcast)
		case $cur in
		-*) COMPREPLY=($(compgen -W "-h --help" -- "$cur")) ;;
		esac ;;
	discover)
		case $prev in
		-t | --timeout | -d | --discovery-port | -b | --bind) return ;;
		esac
		COMPREPLY=($(compgen -W "-t --timeout -v --verify -j --json
		    -w --watch -d --discovery-port -b --bind -h --help" \
		    -- "$cur")) ;;
	call)
		# The endpoint is the first operand after "call".
		if [ "$COMP_CWORD" -eq $((i + 1)) ]; then
			case $cur in
			-*) COMPREPLY=($(compgen -W "-j --json -h --help" \
			    -- "$cur")) ;;
			*)
				word=$(_witchctl_endpoints "${conn[@]}") ||
				    word=$builtins
				COMPREPLY=($(compgen -W "$word" -- "$cur")) ;;
			esac
		elif [ "$COMP_CWORD" -eq $((i + 2)) ]; then
			COMPREPLY=($(compgen -W "-" -- "$cur"))
		fi ;;
	kill-client)
		# The client ids the server lists (sorted; the last one is
		# this query's own connection).
		case $cur in
		-*) COMPREPLY=($(compgen -W "-j --json -h --help" \
		    -- "$cur")) ;;
		*)
			if [ "$COMP_CWORD" -eq $((i + 1)) ]; then
				word=$("${COMP_WORDS[0]}" "${conn[@]}" -t 0.5 \
				    clients 2>/dev/null |
				    sed '1d; $d; s/^ *//; s/ .*//')
				COMPREPLY=($(compgen -W "$word" -- "$cur"))
			fi ;;
		esac ;;
	stats)
		case $cur in
		-*) COMPREPLY=($(compgen -W "--prometheus -h --help" \
		    -- "$cur")) ;;
		esac ;;
	echo | info | status | peers | clients | monitor)
		case $cur in
		-*) COMPREPLY=($(compgen -W "-j --json -h --help" \
		    -- "$cur")) ;;
		esac ;;
	esac
}
complete -F _witchctl witchctl
