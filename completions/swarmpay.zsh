#compdef swarmpay
# zsh completion for swarmpay
#
# Install:  swarmpay completion zsh > "${fpath[1]}/_swarmpay"   (then: compinit)
#      or:  source <(swarmpay completion zsh)                   (after compinit)
#
# Hand-written and static: the tables below mirror src/cli/*.ts. A command
# NAME with subcommands lists them in _swarmpay_cmds_NAME ("name:description");
# a command without subcommands lists its options and arguments, as
# _arguments specs, in _swarmpay_args_NAME (spaces in NAME become "_": the
# options of "node start" are in _swarmpay_args_node_start). To add a command
# group (e.g. channel, escrow), add it to _swarmpay_cmds and give it those
# two kinds of arrays.

# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

# Global options: valid before or after any command.
typeset -ga _swarmpay_global_args=(
  '--network=[Bitcoin network]:network:(regtest signet testnet mainnet)'
  '--datadir=[where keystore, node and state live, one folder per network]:directory:_files -/'
  '--chain=[chain backend]:backend:(embedded btcd bitcoind)'
  '--rpc-url=[JSON-RPC URL of a btcd or Bitcoin Core node]:url:_urls'
  '--rpc-cookie=[RPC cookie file (user:password)]:cookie file:_files'
  '--tpm=[which TPM: auto, swtpm:HOST:PORT, device:/dev/tpmrm0 or none]:TPM:_swarmpay_tpm_spec'
  '--json[print one JSON document on stdout, nothing else there]'
  '(-y --yes)-y[never prompt]'
  '(-y --yes)--yes[never prompt]'
  '(- *)-h[display help for command]'
  '(- *)--help[display help for command]'
)

# Options of the bare program only.
typeset -ga _swarmpay_top_args=(
  '(- *)-V[output the version number]'
  '(- *)--version[output the version number]'
)

# Top-level commands.
typeset -ga _swarmpay_cmds=(
  'node:the embedded regtest node'
  'wallet:the HD wallet (BIP39 seed, BIP84 native segwit account)'
  'tpm:the TPM 2.0: seal the keystore, anti-rollback counter, attestation'
  'demo:run the whole story on a fresh regtest node in a temporary folder'
  'completion:print the shell completion script (bash, zsh or fish)'
  'help:display help for command'
)
typeset -ga _swarmpay_args_demo=(
  '--keep[keep the temporary folder and leave its node running]'
)
typeset -ga _swarmpay_args_completion=(
  '1:shell:(bash zsh fish)'
)
typeset -ga _swarmpay_args_help=(
  '1::command:{_swarmpay_describe_cmds}'
)

# node
typeset -ga _swarmpay_cmds_node=(
  'start:start the regtest node'
  'stop:stop the regtest node'
  'status:whether the node runs, and its height'
  'mine:mine blocks on regtest'
  'help:display help for command'
)
typeset -ga _swarmpay_args_node_start=(
  '--impl=[node implementation]:implementation:(btcd bitcoind)'
)
typeset -ga _swarmpay_args_node_stop=()
typeset -ga _swarmpay_args_node_status=()
typeset -ga _swarmpay_args_node_mine=(
  '--to=[pay this address the block rewards]:address: '
  '1:blocks (1 to 1000): '
)
typeset -ga _swarmpay_args_node_help=(
  '1::command:{_swarmpay_describe_cmds node}'
)

# wallet
typeset -ga _swarmpay_cmds_wallet=(
  'create:create a wallet (24 words), or restore one with --restore'
  'address:the first receive address not yet paid'
  'balance:confirmed and unconfirmed balance, in sats'
  'info:the wallet'\''s network, account path, xpub and keystore'
  'send:pay an address'
  'help:display help for command'
)
typeset -ga _swarmpay_args_wallet_create=(
  '--restore[restore from an existing mnemonic]'
  '--mnemonic-file=[read (--restore) or write the mnemonic from/to FILE]:mnemonic file:_files'
  '--passphrase-file=[read the keystore passphrase from FILE]:passphrase file:_files'
)
typeset -ga _swarmpay_args_wallet_address=()
typeset -ga _swarmpay_args_wallet_balance=()
typeset -ga _swarmpay_args_wallet_info=()
typeset -ga _swarmpay_args_wallet_send=(
  '--fee-rate=[fee rate in whole sat/vB]:sat/vB: '
  '--passphrase-file=[read the keystore passphrase from FILE]:passphrase file:_files'
  '--wait=[wait until the payment has this many confirmations]:confirmations: '
  '1:address: '
  '2:amount (sats): '
)
typeset -ga _swarmpay_args_wallet_help=(
  '1::command:{_swarmpay_describe_cmds wallet}'
)

# tpm
typeset -ga _swarmpay_cmds_tpm=(
  'provision:seal the keystore'\''s key to the TPM, define its anti-rollback counter'
  'status:the TPM found, its lockout state, the attestation key, how the keystore is sealed'
  'attest:a TPM quote over PCRs with a peer'\''s nonce, signed by the attestation key'
  'verify:verify a peer'\''s attestation document'
  'help:display help for command'
)
typeset -ga _swarmpay_args_tpm_provision=(
  '--pcrs=[bind the key to these PCRs'\'' current values (SHA-256 bank), e.g. 7,16]:PCR list: '
  '--force[seal again a keystore the TPM already seals (e.g. to other PCRs)]'
  '--passphrase-file=[read the current keystore passphrase from FILE]:passphrase file:_files'
)
typeset -ga _swarmpay_args_tpm_status=()
typeset -ga _swarmpay_args_tpm_attest=(
  '--nonce=[the verifier'\''s fresh nonce (1 to 64 bytes of hex)]:nonce (hex): '
  '--pcrs=[PCRs to quote (SHA-256 bank), default 0,1,2,3,4,5,6,7]:PCR list: '
  '--out=[write the attestation document to FILE instead of stdout]:attestation file:_files'
)
typeset -ga _swarmpay_args_tpm_verify=(
  '--nonce=[the nonce you gave the peer]:nonce (hex): '
  '--expect-pcrs=[JSON allow list of PCR values]:PCR allow list (JSON):_files'
  '--ak=[the AK public key (PEM) you trust for this peer]:AK public key (PEM):_files'
  '1:attestation document (quote file):_files'
)
typeset -ga _swarmpay_args_tpm_help=(
  '1::command:{_swarmpay_describe_cmds tpm}'
)

# ---------------------------------------------------------------------------
# Completion functions
# ---------------------------------------------------------------------------

# The values of --tpm: auto, none, or swtpm:HOST:PORT and device:PATH (a
# prefix first, then after device: a path).
_swarmpay_tpm_spec() {
  if compset -P 'device:'; then
    _files
  elif compset -P 'swtpm:'; then
    _message -e tpm-address 'HOST:PORT of a software TPM (swtpm)'
  else
    local -a specs prefixes
    specs=(
      'auto:/dev/tpmrm0, else the software TPM node start runs'
      'none:no TPM (the keystore keeps its passphrase)'
    )
    prefixes=(
      'swtpm\::a software TPM at HOST:PORT'
      'device\::a TPM device, e.g. device:/dev/tpmrm0'
    )
    _describe -t tpm-specs 'TPM' specs -- prefixes -S ''
  fi
}

# Offers the subcommands of command $1 (the top-level commands without $1).
_swarmpay_describe_cmds() {
  local var=_swarmpay_cmds${1:+_${1// /_}}
  local -a cmds
  cmds=("${(@P)var}")
  _describe -t commands "${1:-swarmpay} command" cmds
}

# Completes the words of command $1 ("" for the program itself).
_swarmpay_command() {
  local name=$1 key=${1// /_}
  local cmdsvar=_swarmpay_cmds${key:+_$key} argsvar=_swarmpay_args_$key
  local curcontext=$curcontext state state_descr line ret=1
  typeset -A opt_args

  if (( ${(P)+cmdsvar} )); then
    # A command with subcommands.
    local -a extra
    [[ -z $name ]] && extra=("${_swarmpay_top_args[@]}")
    _arguments -C -S \
      "${_swarmpay_global_args[@]}" "${extra[@]}" \
      ': :->command' \
      '*:: :->args' && ret=0
    case $state in
      command)
        _swarmpay_describe_cmds "$name" && ret=0 ;;
      args)
        local sub=${words[1]}
        curcontext=${curcontext%:*:*}:swarmpay-${key:+${key}-}$sub:
        _swarmpay_command "${name:+$name }$sub" && ret=0 ;;
    esac
  elif (( ${(P)+argsvar} )); then
    # A command without subcommands: its options and arguments.
    _arguments -S "${_swarmpay_global_args[@]}" "${(@P)argsvar}" && ret=0
  else
    _message "unknown command: $name"
  fi
  return ret
}

_swarmpay() {
  _swarmpay_command ""
}

if [[ $funcstack[1] == _swarmpay ]]; then
  # Autoloaded from $fpath by compinit: complete now.
  _swarmpay "$@"
else
  # Sourced (e.g. source <(swarmpay completion zsh)).
  compdef _swarmpay swarmpay
fi
