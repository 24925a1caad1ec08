# bash completion for swarmpay                                -*- shell-script -*-
#
# Install:  source <(swarmpay completion bash)
#      or:  swarmpay completion bash > ~/.local/share/bash-completion/completions/swarmpay
#
# Hand-written and static: the tables below mirror src/cli/*.ts. To add a command
# group, add it to _swarmpay_groups, list its
# subcommands in _swarmpay_subcommands, their options in _swarmpay_options, and
# any option that takes a value in _swarmpay_optarg.

# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

# Command groups and top-level commands.
_swarmpay_groups="info node wallet tpm channel escrow demo completion help"

# Global options: valid before or after any command.
_swarmpay_global_options="--network --datadir --chain --rpc-url --rpc-cookie --tpm --json -y --yes -h --help"

# Options of the bare program only.
_swarmpay_top_options="-V --version"

# Subcommands of each group ("" if the command has none).
_swarmpay_subcommands() {
    case $1 in
        node)   echo "start stop status credentials mine help" ;;
        wallet) echo "create address utxos balance history info send bump help" ;;
        tpm)    echo "provision status attest verify enroll trust help" ;;
        channel) echo "serve open pay close bump refund list recover show help" ;;
        escrow) echo "offer accept claim refund serve list show help" ;;
        *)      echo "" ;;
    esac
}

# Options of each command ("group subcommand", or the command alone).
_swarmpay_options() {
    case $1 in
        info)            echo "--passphrase-file" ;;
        "node start")    echo "--impl --share-group" ;;
        "node credentials") echo "--out --share-group" ;;
        "node mine")     echo "--to" ;;
        "wallet create") echo "--restore --mnemonic-file --passphrase-file --bip39-passphrase-file --bip39-passphrase" ;;
        "wallet address") echo "--new" ;;
        "wallet history") echo "--limit --passphrase-file" ;;
        "wallet bump")   echo "--fee-rate --passphrase-file" ;;
        "wallet send")   echo "--max --subtract-fee --fee-rate --passphrase-file --wait --timeout" ;;
        "tpm provision") echo "--pcrs --force --passphrase-file" ;;
        "tpm attest")    echo "--nonce --pcrs --out" ;;
        "tpm verify")    echo "--nonce --expect-pcrs --ak --enrolled" ;;
        "tpm enroll")    echo "--peer --peer-cmd --peer-key --tpm-ca --label" ;;
        "channel serve") echo "--listen --stdio --min-capacity --max-capacity --min-expiry --confirmations --close-margin --min-close-fee-rate --bump-after --poll --max-connections --max-handshakes --handshake-timeout --idle-timeout --link-buffer --send-queue --passphrase-file" ;;
        "channel open")  echo "--peer --peer-cmd --peer-key --capacity --expiry --fee-rate --resume --wait --timeout --passphrase-file" ;;
        "channel pay")   echo "--count --batch --passphrase-file" ;;
        "channel close") echo "--passphrase-file" ;;
        "channel bump")  echo "--fee-rate --passphrase-file" ;;
        "channel refund") echo "--fee-rate --passphrase-file" ;;
        "channel list")  echo "--passphrase-file" ;;
        "channel recover") echo "--passphrase-file" ;;
        "channel show")  echo "--passphrase-file" ;;
        "escrow offer")  echo "--item --price --name --timeout --max-timeout --confirmations --expires --attest --pcrs --out --passphrase-file" ;;
        "escrow accept") echo "--ciphertext --peer --peer-cmd --peer-key --max-price --timeout --require-attestation --expect-pcrs --ak --enrolled --fee-rate --out --passphrase-file" ;;
        "escrow claim")  echo "--acceptance --out --wait --timeout --force --margin --fee-rate --passphrase-file" ;;
        "escrow refund") echo "--fee-rate --passphrase-file" ;;
        "escrow serve")  echo "--listen --stdio --poll --margin --fee-rate --bump-after --max-connections --max-handshakes --handshake-timeout --idle-timeout --link-buffer --send-queue --passphrase-file" ;;
        "escrow list")   echo "--passphrase-file" ;;
        "escrow show")   echo "--passphrase-file" ;;
        demo)            echo "--keep" ;;
        *)               echo "" ;;
    esac
}

# How to complete the value of an option that takes one; fails for flags.
#   $1 = command ("node start", ...), $2 = option.
#   Prints: "dir", "file", "file W1 W2..." (file names and these words),
#   "text" (free text, nothing to offer) or "choice W1 W2...";
#   a choice ending in ':' is a prefix (no space is added after it).
_swarmpay_optarg() {
    case $2 in
        --network)    echo "choice regtest signet testnet mainnet"; return ;;
        --chain)      echo "choice embedded btcd bitcoind"; return ;;
        --datadir)    echo "dir"; return ;;
        --rpc-cookie) echo "file"; return ;;
        --rpc-url)    echo "text"; return ;;
        --tpm)        echo "choice auto none swtpm: device:"; return ;;
    esac
    case "$1 $2" in
        "info --passphrase-file")         echo "file -" ;;
        "node start --impl")              echo "choice btcd bitcoind" ;;
        "node start --share-group")       echo "text" ;;
        "node credentials --out")         echo "file" ;;
        "node credentials --share-group") echo "text" ;;
        "node mine --to")                 echo "text" ;;
        "wallet create --mnemonic-file")  echo "file" ;;
        "wallet create --passphrase-file") echo "file -" ;;
        "wallet create --bip39-passphrase-file") echo "file -" ;;
        "wallet history --limit")         echo "text" ;;
        "wallet history --passphrase-file") echo "file -" ;;
        "wallet send --fee-rate")         echo "text" ;;
        "wallet bump --fee-rate")         echo "text" ;;
        "wallet bump --passphrase-file")  echo "file -" ;;
        "wallet send --passphrase-file")  echo "file -" ;;
        "wallet send --wait")             echo "text" ;;
        "wallet send --timeout")          echo "text" ;;
        "channel open --timeout")         echo "text" ;;
        "escrow claim --timeout")         echo "text" ;;
        "tpm provision --pcrs")           echo "text" ;;
        "tpm provision --passphrase-file") echo "file -" ;;
        "tpm attest --nonce")             echo "text" ;;
        "tpm attest --pcrs")              echo "text" ;;
        "tpm attest --out")               echo "file" ;;
        "tpm verify --nonce")             echo "text" ;;
        "tpm verify --expect-pcrs")       echo "file" ;;
        "tpm verify --ak")                echo "file" ;;
        "tpm enroll --peer")              echo "text" ;;
        "tpm enroll --peer-cmd")          echo "text" ;;
        "tpm enroll --peer-key")          echo "text" ;;
        "tpm enroll --tpm-ca")            echo "file" ;;
        "tpm enroll --label")             echo "text" ;;
        "channel serve --listen")         echo "text" ;;
        "channel serve --min-capacity")   echo "text" ;;
        "channel serve --max-capacity")   echo "text" ;;
        "channel serve --min-expiry")     echo "text" ;;
        "channel serve --confirmations")  echo "text" ;;
        "channel serve --close-margin")   echo "text" ;;
        "channel serve --min-close-fee-rate") echo "text" ;;
        "channel serve --bump-after")     echo "text" ;;
        "channel serve --poll")           echo "text" ;;
        "channel serve --max-connections") echo "text" ;;
        "channel serve --max-handshakes") echo "text" ;;
        "channel serve --handshake-timeout") echo "text" ;;
        "channel serve --idle-timeout")   echo "text" ;;
        "channel serve --link-buffer")    echo "text" ;;
        "channel serve --send-queue")     echo "text" ;;
        "channel serve --passphrase-file") echo "file -" ;;
        "channel open --peer")            echo "text" ;;
        "channel open --peer-cmd")        echo "text" ;;
        "channel open --peer-key")        echo "text" ;;
        "channel open --capacity")        echo "text" ;;
        "channel open --expiry")          echo "text" ;;
        "channel open --fee-rate")        echo "text" ;;
        "channel open --resume")          echo "text" ;;
        "channel open --passphrase-file") echo "file -" ;;
        "channel pay --count")            echo "text" ;;
        "channel pay --batch")            echo "file -" ;;
        "channel pay --passphrase-file")  echo "file -" ;;
        "channel close --passphrase-file") echo "file -" ;;
        "channel bump --fee-rate")        echo "text" ;;
        "channel bump --passphrase-file") echo "file -" ;;
        "channel refund --fee-rate")      echo "text" ;;
        "channel refund --passphrase-file") echo "file -" ;;
        "channel list --passphrase-file") echo "file -" ;;
        "channel recover --passphrase-file") echo "file -" ;;
        "channel show --passphrase-file") echo "file -" ;;
        "escrow offer --item")            echo "file" ;;
        "escrow offer --price")           echo "text" ;;
        "escrow offer --name")            echo "text" ;;
        "escrow offer --timeout")         echo "text" ;;
        "escrow offer --max-timeout")     echo "text" ;;
        "escrow offer --confirmations")   echo "text" ;;
        "escrow offer --expires")         echo "text" ;;
        "escrow offer --pcrs")            echo "text" ;;
        "escrow offer --out")             echo "file" ;;
        "escrow offer --passphrase-file") echo "file -" ;;
        "escrow accept --ciphertext")     echo "file" ;;
        "escrow accept --peer")           echo "text" ;;
        "escrow accept --peer-cmd")       echo "text" ;;
        "escrow accept --peer-key")       echo "text" ;;
        "escrow accept --max-price")      echo "text" ;;
        "escrow accept --timeout")        echo "text" ;;
        "escrow accept --expect-pcrs")    echo "file" ;;
        "escrow accept --ak")             echo "file" ;;
        "escrow accept --fee-rate")       echo "text" ;;
        "escrow accept --out")            echo "file" ;;
        "escrow accept --passphrase-file") echo "file -" ;;
        "escrow claim --acceptance")      echo "file" ;;
        "escrow claim --out")             echo "file" ;;
        "escrow claim --margin")          echo "text" ;;
        "escrow claim --fee-rate")        echo "text" ;;
        "escrow claim --passphrase-file") echo "file -" ;;
        "escrow refund --fee-rate")       echo "text" ;;
        "escrow refund --passphrase-file") echo "file -" ;;
        "escrow serve --listen")          echo "text" ;;
        "escrow serve --poll")            echo "text" ;;
        "escrow serve --margin")          echo "text" ;;
        "escrow serve --fee-rate")        echo "text" ;;
        "escrow serve --bump-after")      echo "text" ;;
        "escrow serve --max-connections") echo "text" ;;
        "escrow serve --max-handshakes")  echo "text" ;;
        "escrow serve --handshake-timeout") echo "text" ;;
        "escrow serve --idle-timeout")    echo "text" ;;
        "escrow serve --link-buffer")     echo "text" ;;
        "escrow serve --send-queue")      echo "text" ;;
        "escrow serve --passphrase-file") echo "file -" ;;
        "escrow list --passphrase-file")  echo "file -" ;;
        "escrow show --passphrase-file")  echo "file -" ;;
        *) return 1 ;;
    esac
}

# Positional arguments worth completing: $1 = command, $2 = index (1-based)
# among the command's own arguments. Prints a word list, or "file" for file names.
_swarmpay_positional() {
    case "$1 $2" in
        "completion 1") echo "bash zsh fish" ;;
        "help 1")       echo "$_swarmpay_groups" ;;
        "node help 1")  _swarmpay_subcommands node ;;
        "wallet help 1") _swarmpay_subcommands wallet ;;
        "tpm help 1")   _swarmpay_subcommands tpm ;;
        "channel help 1") _swarmpay_subcommands channel ;;
        "escrow help 1") _swarmpay_subcommands escrow ;;
        "tpm verify 1") echo "file" ;;
        "tpm trust 1")  echo "list remove help" ;;
        "escrow accept 1") echo "file" ;;
        *)              echo "" ;;
    esac
}

# ---------------------------------------------------------------------------
# Completion function
# ---------------------------------------------------------------------------

# Bash splits words at ':' (it is in COMP_WORDBREAKS): "--tpm swtpm:HOST:PORT"
# and "--rpc-url http://..." reach us as several words. Glues them back where
# no blank separates them on the line: sets _swarmpay_words and _swarmpay_cword.
_swarmpay_glue_words() {
    _swarmpay_words=()
    _swarmpay_cword=0
    local line=$COMP_LINE rest w i n blank
    for ((i = 0; i <= COMP_CWORD && i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        rest=${line#"${line%%[![:blank:]]*}"}
        blank=$((${#rest} != ${#line}))
        line=$rest
        [[ $line == "$w"* ]] && line=${line#"$w"}
        n=${#_swarmpay_words[@]}
        if ((n > 0 && !blank)) && [[ $COMP_WORDBREAKS == *:* ]] &&
            [[ $w == :* || ${_swarmpay_words[n - 1]} == *: ]]; then
            _swarmpay_words[n - 1]+=$w
        else
            _swarmpay_words+=("$w")
        fi
    done
    _swarmpay_cword=$((${#_swarmpay_words[@]} - 1))
}

# Bash replaces only what follows the last ':' of the current word $1: cut
# what precedes it from each candidate, and drop candidates left empty.
_swarmpay_trim_colon() {
    [[ $1 == *:* && $COMP_WORDBREAKS == *:* ]] || return 0
    local head=${1%"${1##*:}"} c
    local -a kept=()
    for c in "${COMPREPLY[@]}"; do
        c=${c#"$head"}
        [[ -n $c ]] && kept+=("$c")
    done
    COMPREPLY=("${kept[@]}")
}

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
        file\ *)
            # File names, and words such as "-" (standard input).
            local IFS=$'\n'
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$3") $(IFS=' '; compgen -W "${kind#file }" -- "$3")) ;;
        choice\ *)
            COMPREPLY=($(compgen -W "${kind#choice }" -- "$3"))
            # A prefix such as "swtpm:" is not a whole value: no space after it.
            [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *: ]] && compopt -o nospace 2>/dev/null ;;
        *)
            COMPREPLY=() ;;
    esac
    [[ -n $4 ]] && COMPREPLY=("${COMPREPLY[@]/#/$4}")
    _swarmpay_trim_colon "$4$3"
    return 0
}

_swarmpay() {
    local -a _swarmpay_words
    local _swarmpay_cword
    _swarmpay_glue_words
    local -a words=("${_swarmpay_words[@]}")
    local cword=$_swarmpay_cword
    local cur=${words[cword]}
    local prev=""
    ((cword > 0)) && prev=${words[cword - 1]}
    COMPREPLY=()

    # Walk the words before the cursor: find the command, skipping options
    # and the values of options that take one.
    local group="" sub="" nargs=0 word i=1 cmd
    while ((i < cword)); do
        word=${words[i]}
        cmd=${group}${sub:+ $sub}
        case $word in
            --*=*|=) ;;
            -*)
                # "--opt =" / "--opt = value" when bash splits at '='.
                if [[ ${words[i + 1]-} == "=" ]]; then
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
    if [[ $prev == "=" ]] && ((cword >= 2)); then
        _swarmpay_complete_value "$cmd" "${words[cword - 2]}" "$cur" && return 0
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
        local args
        args=$(_swarmpay_positional "$cmd" $((nargs + 1)))
        if [[ $args == file ]]; then
            local IFS=$'\n'
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$args" -- "$cur"))
        fi
    fi
    _swarmpay_trim_colon "$cur"
    return 0
}

complete -F _swarmpay swarmpay
