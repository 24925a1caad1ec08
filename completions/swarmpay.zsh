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
# group, add it to _swarmpay_cmds and give it those
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
  'info:network, node, wallet, TPM, channels and escrows at a glance'
  'node:the embedded regtest node'
  'wallet:the HD wallet (BIP39 seed, BIP84 native segwit account)'
  'tpm:the TPM 2.0: seal the keystore, anti-rollback counter, attestation'
  'channel:payment channels: thousands of payments a second, settled with two transactions'
  'escrow:fair exchange: an item for bitcoin through a hash-locked contract, no trusted escrow'
  'demo:run the whole story on a fresh regtest node in a temporary folder'
  'completion:print the shell completion script (bash, zsh or fish)'
  'help:display help for command'
)
typeset -ga _swarmpay_args_info=(
  '--passphrase-file=[count the channels and escrows: the passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
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
  'credentials:write the node'\''s RPC credentials to a file for another user'
  'mine:mine blocks on regtest'
  'help:display help for command'
)
typeset -ga _swarmpay_args_node_start=(
  '--impl=[node implementation]:implementation:(btcd bitcoind)'
  '--share-group=[let this group read the RPC cookie]:group:_groups'
)
typeset -ga _swarmpay_args_node_stop=()
typeset -ga _swarmpay_args_node_status=()
typeset -ga _swarmpay_args_node_credentials=(
  '--out=[where to write the credentials]:file:_files'
  '--share-group=[let this group read the file]:group:_groups'
)
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
  'address:the first receive address not yet paid; with --new, one never given out before'
  'utxos:the wallet'\''s coins, and whether a payment may spend them'
  'history:the wallet'\''s transactions, newest first, channel and escrow steps and bumps labelled'
  'balance:confirmed and unconfirmed balance, in sats'
  'info:the wallet'\''s network, account path, xpub (and zpub or vpub), whether a BIP39 passphrase is in use, and keystore'
  'send:pay an address'
  'bump:replace an unconfirmed payment at a higher fee rate (RBF)'
  'help:display help for command'
)
typeset -ga _swarmpay_args_wallet_create=(
  '--restore[restore from an existing mnemonic]'
  '--mnemonic-file=[read (--restore) or write the mnemonic from/to FILE]:mnemonic file:_files'
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '(--bip39-passphrase)--bip39-passphrase-file=[read an optional BIP39 passphrase (25th word, not the keystore passphrase) from FILE, or - for stdin]:BIP39 passphrase file:_swarmpay_file_or_stdin passphrase'
  '(--bip39-passphrase-file)--bip39-passphrase[ask for an optional BIP39 passphrase (25th word, not the keystore passphrase) on the terminal]'
)
typeset -ga _swarmpay_args_wallet_address=(
  '--new[a fresh address each call, never one given out before]'
)
typeset -ga _swarmpay_args_wallet_utxos=()
typeset -ga _swarmpay_args_wallet_balance=()
typeset -ga _swarmpay_args_wallet_history=(
  '--limit=[only the newest N]:count: '
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin: to label channel and escrow transactions]:passphrase file:_swarmpay_file_or_stdin passphrase'
)
typeset -ga _swarmpay_args_wallet_info=()
typeset -ga _swarmpay_args_wallet_send=(
  '(--subtract-fee 2)--max[send every spendable coin, less the fee]'
  '(--max)--subtract-fee[the payee gets the amount less the fee]'
  '--fee-rate=[fee rate in sat/vB (up to 3 decimals), or auto for the node'\''s estimate]:sat/vB: '
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '--wait=[wait until the payment has this many confirmations]:confirmations: '
  '--timeout=[with --wait: give up after this many seconds (default 3600)]:seconds: '
  '1:address: '
  '(--max)2:amount (sats): '
)
typeset -ga _swarmpay_args_wallet_bump=(
  '--fee-rate=[the new fee rate in sat/vB (up to 3 decimals), or auto]:sat/vB: '
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '1:txid: '
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
  'enroll:check a peer'\''s TPM identity (EK certificate, credential activation) and enroll its AK'
  'trust:the TPM trust store: attestation keys enrolled with tpm enroll'
  'help:display help for command'
)
typeset -ga _swarmpay_args_tpm_provision=(
  '--pcrs=[bind the key to these PCRs'\'' current values (SHA-256 bank), e.g. 7,16]:PCR list: '
  '--force[seal again a keystore the TPM already seals (e.g. to other PCRs)]'
  '--passphrase-file=[read the current keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
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
  '(--enrolled)--ak=[the AK public key (PEM) you trust for this peer]:AK public key (PEM):_files'
  '(--ak)--enrolled[require the AK to be one enrolled in the trust store]'
  '1:attestation document (quote file):_files'
)
typeset -ga _swarmpay_args_tpm_enroll=(
  '(--peer-cmd)--peer=[the peer to enroll (a seller'\''s escrow serve --listen)]:HOST\:PORT: '
  '(--peer)--peer-cmd=[run COMMAND and speak to the peer over its stdin/stdout]:command:_cmdstring'
  '--peer-key=[the peer'\''s static key: refuse any other]:key (hex): '
  '--tpm-ca=[PEM file of the TPM manufacturer CA certificates you trust]:CA certificates (PEM):_files'
  '--label=[a name for this identity in tpm trust list]:label: '
)
typeset -ga _swarmpay_cmds_tpm_trust=(
  'list:the enrolled TPM identities'
  'remove:stop trusting an enrolled AK'
  'help:display help for command'
)
typeset -ga _swarmpay_args_tpm_trust_list=()
typeset -ga _swarmpay_args_tpm_trust_remove=(
  '1:AK name (hex, as tpm trust list shows it): '
)
typeset -ga _swarmpay_args_tpm_trust_help=(
  '1::command:{_swarmpay_describe_cmds "tpm trust"}'
)
typeset -ga _swarmpay_args_tpm_help=(
  '1::command:{_swarmpay_describe_cmds tpm}'
)

# channel
typeset -ga _swarmpay_cmds_channel=(
  'serve:the payee: accept channels and payments, and see closes confirm, until SIGINT/SIGTERM'
  'open:the payer: fund a channel to a payee from this wallet; or finish one whose open was cut short'
  'pay:the payer: pay over a channel, pipelined; or a batch of JSON lines'
  'close:close a channel: the payee broadcasts the newest state; a payer asks the payee to'
  'bump:raise the fee of a channel'\''s close (or refund) waiting to confirm, by a child (CPFP) from this wallet'
  'refund:the payer: take back the whole channel output after the expiry'
  'list:the channels of this datadir, each as the chain shows it now'
  'recover:check every channel journal; rewrite one that is damaged or rolled back from what can still be verified'
  'show:one channel: status, paid, remaining, expiry in blocks, confirmations, txids'
  'help:display help for command'
)
typeset -ga _swarmpay_args_channel_serve=(
  '(--stdio)--listen=[listen for payers on TCP (default 127.0.0.1:9735)]:HOST\:PORT: '
  '(--listen)--stdio[serve one payer on stdin/stdout (for --peer-cmd, e.g. over ssh)]'
  '--min-capacity=[smallest channel accepted (default 10000)]:sats: '
  '--max-capacity=[largest channel accepted (default 100000000)]:sats: '
  '--min-expiry=[the expiry must be at least this many blocks away, more than --close-margin (default 36)]:blocks: '
  '--confirmations=[funding confirmations before payments count, at least 1 (default 1)]:confirmations: '
  '--close-margin=[stop payments and close this many blocks before the expiry (default 24)]:blocks: '
  '--min-close-fee-rate=[the least close fee rate agreed at open, whatever the node estimates (default 2)]:sat/vB: '
  '--bump-after=[bump a close by CPFP once it has waited this many blocks unconfirmed (default 2)]:blocks: '
  '--poll=[how often to look at every channel: closes to make, confirm or bump (default 10)]:seconds: '
  '--max-connections=[peers connected at once, handshakes included; more are closed at once (default 4096)]:connections: '
  '--max-handshakes=[handshakes run at once; later connections wait their turn (default 64)]:handshakes: '
  '--handshake-timeout=[a connection must finish its handshake within this (default 10)]:seconds: '
  '--idle-timeout=[close a link that brings no whole frame for this long (default 120)]:seconds: '
  '--link-buffer=[bytes one link may hold unhandled before it is not read (default 1048576)]:bytes: '
  '--send-queue=[bytes that may wait for a peer that does not read; past it the peer is dropped (default 4194304)]:bytes: '
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
)
typeset -ga _swarmpay_args_channel_open=(
  '(--peer-cmd --resume)--peer=[the payee'\''s channel serve --listen address]:HOST\:PORT: '
  '(--peer --resume)--peer-cmd=[run COMMAND and speak to the payee over its stdin/stdout]:command:_cmdstring'
  '--peer-key=[the payee'\''s static key (64 hex characters): refuse any other]:key (hex): '
  '(--resume)--capacity=[sats to lock in the channel (required unless --resume)]:sats: '
  '--expiry=[blocks until the payer may take back what was not paid (default 144)]:blocks: '
  '--fee-rate=[fee rate of the funding (default 2 on regtest)]:sat/vB: '
  '(--peer --peer-cmd --capacity)--resume=[finish opening this channel: broadcast its funding again and hand the payee its ticket]:channel id: '
  '--wait[wait until the funding has the confirmations the payee asked for]'
  '--timeout=[with --wait: give up after this many seconds (default 3600)]:seconds: '
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
)
typeset -ga _swarmpay_args_channel_pay=(
  '(--batch)--count=[make this many payments of SATS (default 1)]:count: '
  '(1 2 --count)--batch=[JSON lines {"id", "channel", "sats"} from FILE or - (stdin); ids already paid are skipped]:batch file:_swarmpay_file_or_stdin batch'
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '(--batch)1:channel id: '
  '(--batch)2:amount of each payment (sats): '
)
typeset -ga _swarmpay_args_channel_close=(
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '1:channel id: '
)
typeset -ga _swarmpay_args_channel_bump=(
  '--fee-rate=[the fee rate of the close and its child together (required)]:sat/vB: '
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '1:channel id: '
)
typeset -ga _swarmpay_args_channel_refund=(
  '--fee-rate=[fee rate of the refund (default 2 on regtest)]:sat/vB: '
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '1:channel id: '
)
typeset -ga _swarmpay_args_channel_list=(
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
)
typeset -ga _swarmpay_args_channel_recover=(
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
)
typeset -ga _swarmpay_args_channel_show=(
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '1:channel id: '
)
typeset -ga _swarmpay_args_channel_help=(
  '1::command:{_swarmpay_describe_cmds channel}'
)

# escrow
typeset -ga _swarmpay_cmds_escrow=(
  'offer:the seller: encrypt an item under a fresh key K and sign an offer of it for H = SHA-256(K)'
  'accept:the buyer: check an offer and its ciphertext, then fund the hash-locked contract'
  'claim:the seller: take the coins by revealing K; the buyer: read K from the chain and recover the item'
  'refund:the buyer: take the coins back after the timeout if the seller never claimed'
  'serve:the seller: serve open offers, take acceptances and claim once funded, until SIGINT/SIGTERM'
  'list:the escrows of this datadir'
  'show:one escrow: offer, state and each step'\''s txid'
  'help:display help for command'
)
typeset -ga _swarmpay_args_escrow_offer=(
  '--item=[the item to sell]:item file:_files'
  '--price=[what the buyer pays]:sats: '
  '--name=[the item'\''s name in the offer (default: the file name)]:name: '
  '--timeout=[the fewest blocks from acceptance to the buyer'\''s refund accepted (default 144)]:blocks: '
  '--max-timeout=[the most blocks from acceptance to the timeout accepted (default 4032)]:blocks: '
  '--confirmations=[confirmations of the funding before the seller claims (default 1)]:confirmations: '
  '--expires=[hours until the offer expires (default 24)]:hours: '
  '--attest[add a TPM quote whose nonce is the offer'\''s digest]'
  '--pcrs=[PCRs the quote covers (SHA-256 bank), default 0,1,2,3,4,5,6,7]:PCR list: '
  '--out=[write the offer to FILE and its ciphertext to FILE.enc]:offer file:_files'
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
)
typeset -ga _swarmpay_args_escrow_accept=(
  '--ciphertext=[the ciphertext that came with the offer (default: OFFER.enc, else ID.enc beside the offer)]:ciphertext file:_files'
  '(--peer-cmd)--peer=[fetch the offer from the seller'\''s escrow serve --listen]:HOST\:PORT: '
  '(--peer)--peer-cmd=[run COMMAND and speak to the seller over its stdin/stdout]:command:_cmdstring'
  '--peer-key=[the seller'\''s static key (as escrow serve prints it): refuse any other]:key (hex): '
  '--max-price=[refuse an offer that asks more]:sats: '
  '--timeout=[blocks until the refund is possible (default 144, or the offer'\''s most if less)]:blocks: '
  '--require-attestation[refuse an offer without a valid TPM attestation by an AK you enrolled (tpm enroll) or pinned (--ak)]'
  '--expect-pcrs=[JSON allow list of the seller'\''s PCR values]:PCR allow list (JSON):_files'
  '(--enrolled)--ak=[the seller TPM'\''s AK public key (PEM) you trust]:AK public key (PEM):_files'
  '(--ak)--enrolled[require the attestation to be by a TPM enrolled with tpm enroll]'
  '--fee-rate=[fee rate of the funding (default 2 on regtest)]:sat/vB: '
  '--out=[also write the acceptance for the seller to FILE]:acceptance file:_files'
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '1::offer file (with --peer or --peer-cmd, the offer id):_files'
)
typeset -ga _swarmpay_args_escrow_claim=(
  '--acceptance=[seller: the acceptance the buyer sent]:acceptance file:_files'
  '--out=[buyer: write the item to FILE]:item file:_files'
  '--wait[seller: wait for the funding'\''s confirmations; buyer: wait for the seller'\''s claim]'
  '--timeout=[with --wait: give up after this many seconds (default 3600)]:seconds: '
  '--force[seller: claim even within the safety margin of the timeout]'
  '--margin=[seller: blocks before the timeout from which claiming is refused (default 6)]:blocks: '
  '--fee-rate=[seller: fee rate of the claim (default: the node'\''s estimate, at least 2)]:sat/vB: '
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '1:escrow id: '
)
typeset -ga _swarmpay_args_escrow_refund=(
  '--fee-rate=[fee rate of the refund (default 2 on regtest)]:sat/vB: '
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '1:escrow id: '
)
typeset -ga _swarmpay_args_escrow_serve=(
  '(--stdio)--listen=[listen for buyers on TCP (default 127.0.0.1:9736)]:HOST\:PORT: '
  '(--listen)--stdio[serve one buyer on stdin/stdout (for --peer-cmd, e.g. over ssh)]'
  '--poll=[how often to look at the escrows: fundings confirmed or gone, claims to send again or bump (default 5)]:seconds: '
  '--margin=[refuse acceptances and claims this near the timeout (default 6)]:blocks: '
  '--fee-rate=[fee rate of the claims (default: the node'\''s estimate at each claim, at least 2)]:sat/vB: '
  '--bump-after=[bump a claim by CPFP once it has waited this many blocks unconfirmed (default 2)]:blocks: '
  '--max-connections=[peers connected at once, handshakes included; more are closed at once (default 4096)]:connections: '
  '--max-handshakes=[handshakes run at once; later connections wait their turn (default 64)]:handshakes: '
  '--handshake-timeout=[a connection must finish its handshake within this (default 10)]:seconds: '
  '--idle-timeout=[close a link that brings no whole frame for this long (default 120)]:seconds: '
  '--link-buffer=[bytes one link may hold unhandled before it is not read (default 1048576)]:bytes: '
  '--send-queue=[bytes that may wait for a peer that does not read; past it the peer is dropped (default 4194304)]:bytes: '
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
)
typeset -ga _swarmpay_args_escrow_list=(
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
)
typeset -ga _swarmpay_args_escrow_show=(
  '--passphrase-file=[read the keystore passphrase from FILE, or - for stdin]:passphrase file:_swarmpay_file_or_stdin passphrase'
  '1:escrow id: '
)
typeset -ga _swarmpay_args_escrow_help=(
  '1::command:{_swarmpay_describe_cmds escrow}'
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

# The value of --batch or --passphrase-file: a file, or - for standard input;
# $1 names what is read ("batch", "passphrase").
_swarmpay_file_or_stdin() {
  _alternative \
    "stdin:standard input:((-\\:\"read the $1 from standard input\"))" \
    "files:$1 file:_files"
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
