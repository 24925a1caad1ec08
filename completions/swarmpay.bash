# bash completion for swarmpay                                -*- shell-script -*-
#
# Install:  source <(swarmpay completion bash)
#      or:  swarmpay completion bash > ~/.local/share/bash-completion/completions/swarmpay
#
# Hand-written and static: the tables below mirror src/cli/*.ts. To add a command
# group (e.g. tpm, channel, escrow), add it to _swarmpay_groups, list its
# subcommands in _swarmpay_subcommands, their options in _swarmpay_options, and
# any option that takes a value in _swarmpay_optarg.

# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

# Command groups and top-level commands.
_swarmpay_groups="node wallet demo completion help"

# Global options: valid before or after any command.
_swarmpay_global_options="--network --datadir --chain --rpc-url --rpc-cookie --json -y --yes -h --help"

# Options of the bare program only.
_swarmpay_top_options="-V --version"

# Subcommands of each group ("" if the command has none).
_swarmpay_subcommands() {
    case $1 in
        node)   echo "start stop status mine help" ;;
        wallet) echo "create address balance info send help" ;;
        *)      echo "" ;;
    esac
}

# Options of each command ("group subcommand", or the command alone).
_swarmpay_options() {
    case $1 in
        "node start")    echo "--impl" ;;
        "node mine")     echo "--to" ;;
        "wallet create") echo "--restore --mnemonic-file --passphrase-file" ;;
        "wallet send")   echo "--fee-rate --passphrase-file --wait" ;;
        demo)            echo "--keep" ;;
        *)               echo "" ;;
    esac
}

# How to complete the value of an option that takes one; fails for flags.
#   $1 = command ("node start", ...), $2 = option.
#   Prints: "dir", "file", "text" (free text, nothing to offer) or "choice W1 W2...".
_swarmpay_optarg() {
    case $2 in
        --network)    echo "choice regtest signet testnet mainnet"; return ;;
        --chain)      echo "choice embedded btcd bitcoind"; return ;;
        --datadir)    echo "dir"; return ;;
        --rpc-cookie) echo "file"; return ;;
        --rpc-url)    echo "text"; return ;;
    esac
    case "$1 $2" in
        "node start --impl")              echo "choice btcd bitcoind" ;;
        "node mine --to")                 echo "text" ;;
        "wallet create --mnemonic-file")  echo "file" ;;
        "wallet create --passphrase-file") echo "file" ;;
        "wallet send --fee-rate")         echo "text" ;;
        "wallet send --passphrase-file")  echo "file" ;;
        "wallet send --wait")             echo "text" ;;
        *) return 1 ;;
    esac
}

# Positional arguments worth completing: $1 = command, $2 = index (1-based)
# among the command's own arguments.
_swarmpay_positional() {
    case "$1 $2" in
        "completion 1") echo "bash zsh fish" ;;
        "help 1")       echo "$_swarmpay_groups" ;;
        "node help 1")  _swarmpay_subcommands node ;;
        "wallet help 1") _swarmpay_subcommands wallet ;;
        *)              echo "" ;;
    esac
}

# ---------------------------------------------------------------------------
# Completion function
# ---------------------------------------------------------------------------

# Completes the value of option $2 of command $1 for the current word $3;
# $4 is put before each candidate (for "--opt=value" kept as one word).
_swarmpay_complete_value() {
    local kind
    kind=$(_swarmpay_optarg "$1" "$2") || return 1
    case $kind in
        dir)
            local IFS=$'\n'   # names may hold spaces
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -d -- "$3")) ;;
        file)
            local IFS=$'\n'
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$3")) ;;
        choice\ *)
            COMPREPLY=($(compgen -W "${kind#choice }" -- "$3")) ;;
        *)
            COMPREPLY=() ;;
    esac
    [[ -n $4 ]] && COMPREPLY=("${COMPREPLY[@]/#/$4}")
    return 0
}

_swarmpay() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()

    # Walk the words before the cursor: find the command, skipping options
    # and the values of options that take one.
    local group="" sub="" nargs=0 word i=1 cmd
    while ((i < COMP_CWORD)); do
        word=${COMP_WORDS[i]}
        cmd=${group}${sub:+ $sub}
        case $word in
            --*=*|=) ;;
            -*)
                # "--opt =" / "--opt = value" when bash splits at '='.
                if [[ ${COMP_WORDS[i + 1]-} == "=" ]]; then
                    ((i += 2))
                elif _swarmpay_optarg "$cmd" "$word" >/dev/null; then
                    ((i++))
                fi ;;
            *)
                if [[ -z $group ]]; then
                    group=$word
                elif [[ -z $sub && -n $(_swarmpay_subcommands "$group") ]]; then
                    sub=$word
                else
                    ((nargs++))
                fi ;;
        esac
        ((i++))
    done
    cmd=${group}${sub:+ $sub}

    # The value of an option: "--opt VALUE", "--opt=VALUE" (split by bash at '=').
    if [[ $cur == "=" && $prev == -* ]]; then
        _swarmpay_complete_value "$cmd" "$prev" "" && return 0
    fi
    if [[ $prev == "=" ]] && ((COMP_CWORD >= 2)); then
        _swarmpay_complete_value "$cmd" "${COMP_WORDS[COMP_CWORD - 2]}" "$cur" && return 0
    fi
    if [[ $prev == -* && $prev != *=* ]]; then
        _swarmpay_complete_value "$cmd" "$prev" "$cur" && return 0
    fi
    if [[ $cur == --*=* ]]; then
        _swarmpay_complete_value "$cmd" "${cur%%=*}" "${cur#*=}" "${cur%%=*}=" && return 0
    fi

    # An option name.
    if [[ $cur == -* ]]; then
        local opts="$_swarmpay_global_options $(_swarmpay_options "$cmd")"
        [[ -z $group ]] && opts="$opts $_swarmpay_top_options"
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
    fi

    # A command, a subcommand, or a positional argument.
    if [[ -z $group ]]; then
        COMPREPLY=($(compgen -W "$_swarmpay_groups" -- "$cur"))
    elif [[ -z $sub && -n $(_swarmpay_subcommands "$group") ]]; then
        COMPREPLY=($(compgen -W "$(_swarmpay_subcommands "$group")" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$(_swarmpay_positional "$cmd" $((nargs + 1)))" -- "$cur"))
    fi
    return 0
}

complete -F _swarmpay swarmpay
