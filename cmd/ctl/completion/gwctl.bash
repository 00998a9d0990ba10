# bash completion for gwctl. Install as
# /usr/share/bash-completion/completions/gwctl, or load it with
#	source <(gwctl completion bash)
# The candidates come from gwctl itself (gwctl __complete): subcommands,
# their flags, and link and node names read from the --config file.
_gwctl() {
	local cur=${COMP_WORDS[COMP_CWORD]} gwctl=${COMP_WORDS[0]} line
	command -v -- "$gwctl" >/dev/null 2>&1 || gwctl=gwctl
	local -a out=()
	while IFS= read -r line; do
		out+=("$line")
	done < <("$gwctl" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
	COMPREPLY=()
	if [[ ${out[0]-} == ":files" ]]; then
		compopt -o filenames 2>/dev/null
		while IFS= read -r line; do
			COMPREPLY+=("$line")
		done < <(compgen -f -- "$cur")
		return 0
	fi
	COMPREPLY=("${out[@]}")
	return 0
}
complete -F _gwctl gwctl
