# fish completion for swarmpay
#
# Install:  swarmpay completion fish > ~/.config/fish/completions/swarmpay.fish
#      or:  swarmpay completion fish | source
#
# Hand-written and static: the tables at the end mirror src/cli/*.ts. Each row
# is one call of a helper:
#   __swarmpay_cmd    PARENT NAME DESCRIPTION     a command ("" = top level)
#   __swarmpay_opt    COMMAND FLAGS ARG DESCRIPTION
#                     COMMAND: "*" = everywhere (global), "" = top level only,
#                              else "group sub" or "command";
#                     FLAGS:   "--long" or "-s,--long";
#                     ARG:     "" (a flag), "file", "file:A B" (file names and
#                              these words, as "-" for stdin), "dir", "text", or
#                              "choice:A B C" (a choice ending in ':', as
#                              "swtpm:", is a prefix)
#   __swarmpay_arg    COMMAND CHOICES DESCRIPTION the first argument's values
#   __swarmpay_file_arg COMMAND DESCRIPTION       the first argument is a file
# To add a command group, add its rows.

# No file names unless an option asks for them.
complete -c swarmpay -f

# Filled in by the helpers below: options that take a value (so that their
# values are not taken for commands), and commands that have subcommands.
set -g __swarmpay_valued_options
set -g __swarmpay_has_subcommands

# Prints the command path before the cursor ("", "wallet", "wallet send"...)
# on the first line and the number of arguments given to it on the second,
# skipping options and their values.
function __swarmpay_parse
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l path
    set -l nargs 0
    set -l skip 0
    for t in $tokens
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $t
            case '--*=*'
            case '-*'
                contains -- $t $__swarmpay_valued_options; and set skip 1
            case '*'
                if test (count $path) -eq 0; or contains -- "$path" $__swarmpay_has_subcommands
                    set path $path $t
                else
                    set nargs (math $nargs + 1)
                end
        end
    end
    echo "$path"
    echo $nargs
end

# True when the command path is $argv[1] and, if $argv[2] is given, exactly
# that many arguments have been given to it.
function __swarmpay_at
    set -l p (__swarmpay_parse)
    test "$p[1]" = "$argv[1]"; or return 1
    test (count $argv) -lt 2; or test "$p[2]" = "$argv[2]"
end

function __swarmpay_cmd -a parent name description
    if test -n "$parent"; and not contains -- $parent $__swarmpay_has_subcommands
        set -g -a __swarmpay_has_subcommands $parent
    end
    complete -c swarmpay -n "__swarmpay_at '$parent' 0" -a $name -d $description
end

function __swarmpay_opt -a command flags arg description
    set -l spec
    for f in (string split , -- $flags)
        if string match -q -- '--*' $f
            set -a spec -l (string sub -s 3 -- $f)
        else
            set -a spec -s (string sub -s 2 -- $f)
        end
        test -n "$arg"; and set -g -a __swarmpay_valued_options $f
    end
    if test "$command" != '*'
        set -a spec -n "__swarmpay_at '$command'"
    end
    switch $arg
        case file
            set -a spec -r -F
        case 'file:*'
            set -a spec -r -F -a (string sub -s 6 -- $arg)
        case dir
            set -a spec -x -a '(__fish_complete_directories (commandline -ct) "")'
        case text
            set -a spec -x
        case 'choice:*'
            set -a spec -x -a (string sub -s 8 -- $arg)
    end
    complete -c swarmpay $spec -d $description
end

# The values of a command's first argument.
function __swarmpay_arg -a command choices description
    complete -c swarmpay -n "__swarmpay_at '$command' 0" -a $choices -d $description
end

# The first argument of a command is a file name.
function __swarmpay_file_arg -a command description
    complete -c swarmpay -n "__swarmpay_at '$command' 0" -F -d $description
end

# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

# Global options
__swarmpay_opt '*' --network 'choice:regtest signet testnet mainnet' 'Bitcoin network'
__swarmpay_opt '*' --datadir dir 'where keystore, node and state live'
__swarmpay_opt '*' --chain 'choice:embedded btcd bitcoind' 'chain backend'
__swarmpay_opt '*' --rpc-url text 'JSON-RPC URL of a btcd or Bitcoin Core node'
__swarmpay_opt '*' --rpc-cookie file 'RPC cookie file (user:password)'
__swarmpay_opt '*' --tpm 'choice:auto none swtpm: device:' 'which TPM: auto, swtpm:HOST:PORT, device:PATH or none'
__swarmpay_opt '*' --json '' 'print one JSON document on stdout'
__swarmpay_opt '*' -y,--yes '' 'never prompt'
__swarmpay_opt '*' -h,--help '' 'display help for command'
__swarmpay_opt '' -V,--version '' 'output the version number'

# Top-level commands
__swarmpay_cmd '' info 'network, node, wallet, TPM, channels and escrows at a glance'
__swarmpay_cmd '' node 'the embedded regtest node'
__swarmpay_cmd '' wallet 'the HD wallet (BIP39 seed, BIP84 account)'
__swarmpay_cmd '' tpm 'the TPM 2.0: sealed keystore, anti-rollback, attestation'
__swarmpay_cmd '' channel 'payment channels: thousands of payments a second'
__swarmpay_cmd '' escrow 'fair exchange: an item for bitcoin, no trusted escrow'
__swarmpay_cmd '' demo 'run the whole story on a fresh regtest node'
__swarmpay_cmd '' completion 'print the shell completion script'
__swarmpay_cmd '' help 'display help for command'
__swarmpay_opt demo --keep '' 'keep the temporary folder and its node'
__swarmpay_arg completion 'bash zsh fish' 'shell'
__swarmpay_opt info --passphrase-file file:- 'count channels and escrows: the passphrase from FILE, or - for stdin'
__swarmpay_arg help 'info node wallet tpm channel escrow demo completion help' 'command'

# node
__swarmpay_cmd node start 'start the regtest node'
__swarmpay_cmd node stop 'stop the regtest node'
__swarmpay_cmd node status 'whether the node runs, and its height'
__swarmpay_cmd node credentials "write the node's RPC credentials to a file for another user"
__swarmpay_cmd node mine 'mine blocks on regtest'
__swarmpay_cmd node help 'display help for command'
__swarmpay_opt 'node start' --impl 'choice:btcd bitcoind' 'node implementation'
__swarmpay_opt 'node start' --share-group text 'let this group read the RPC cookie'
__swarmpay_opt 'node credentials' --out file 'where to write the credentials'
__swarmpay_opt 'node credentials' --share-group text 'let this group read the file'
__swarmpay_opt 'node mine' --to text 'pay this address the block rewards'
__swarmpay_arg 'node help' 'start stop status credentials mine help' 'command'

# wallet
__swarmpay_cmd wallet create 'create a wallet, or restore one with --restore'
__swarmpay_cmd wallet address 'the first receive address not yet paid; --new: one never given out'
__swarmpay_cmd wallet utxos 'the coins of the wallet, and whether a payment may spend them'
__swarmpay_cmd wallet balance 'confirmed and unconfirmed balance, in sats'
__swarmpay_cmd wallet history 'the transactions of the wallet, newest first, channel and escrow steps labelled'
__swarmpay_cmd wallet info 'network, account path, xpub (and zpub or vpub), BIP39 passphrase in use or not, and keystore'
__swarmpay_cmd wallet send 'pay an address'
__swarmpay_cmd wallet bump 'replace an unconfirmed payment at a higher fee rate (RBF)'
__swarmpay_cmd wallet help 'display help for command'
__swarmpay_opt 'wallet create' --restore '' 'restore from an existing mnemonic'
__swarmpay_opt 'wallet create' --mnemonic-file file 'read (--restore) or write the mnemonic'
__swarmpay_opt 'wallet create' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'wallet create' --bip39-passphrase-file file:- 'read an optional BIP39 passphrase (25th word, not the keystore one) from FILE, or -'
__swarmpay_opt 'wallet create' --bip39-passphrase '' 'ask for an optional BIP39 passphrase (25th word, not the keystore one)'
__swarmpay_opt 'wallet address' --new '' 'a fresh address each call, never one given out before'
__swarmpay_opt 'wallet history' --limit text 'only the newest N'
__swarmpay_opt 'wallet history' --passphrase-file file:- 'the keystore passphrase, to label channel and escrow transactions'
__swarmpay_opt 'wallet send' --max '' 'send every spendable coin, less the fee'
__swarmpay_opt 'wallet send' --subtract-fee '' 'the payee gets the amount less the fee'
__swarmpay_opt 'wallet send' --fee-rate text 'fee rate in sat/vB (up to 3 decimals), or auto'
__swarmpay_opt 'wallet send' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'wallet send' --wait text 'wait for this many confirmations'
__swarmpay_opt 'wallet send' --timeout text 'with --wait: give up after this many seconds (default 3600)'
__swarmpay_opt 'wallet bump' --fee-rate text 'the new fee rate in sat/vB (up to 3 decimals), or auto'
__swarmpay_opt 'wallet bump' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_arg 'wallet help' 'create address utxos balance history info send bump help' 'command'

# tpm
__swarmpay_cmd tpm provision 'seal the keystore to the TPM, define its anti-rollback counter'
__swarmpay_cmd tpm status 'the TPM, its lockout state, the AK, how the keystore is sealed'
__swarmpay_cmd tpm attest "a TPM quote over PCRs with a peer's nonce"
__swarmpay_cmd tpm verify "verify a peer's attestation document"
__swarmpay_cmd tpm enroll "check a peer's TPM identity and enroll its AK"
__swarmpay_cmd tpm trust 'the TPM trust store: AKs enrolled with tpm enroll'
__swarmpay_cmd tpm help 'display help for command'
__swarmpay_opt 'tpm provision' --pcrs text "bind the key to these PCRs' values, e.g. 7,16"
__swarmpay_opt 'tpm provision' --force '' 'seal again a keystore the TPM already seals'
__swarmpay_opt 'tpm provision' --passphrase-file file:- 'read the current keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'tpm attest' --nonce text "the verifier's fresh nonce (hex)"
__swarmpay_opt 'tpm attest' --pcrs text 'PCRs to quote (default 0,1,2,3,4,5,6,7)'
__swarmpay_opt 'tpm attest' --out file 'write the attestation document to FILE'
__swarmpay_opt 'tpm verify' --nonce text 'the nonce you gave the peer'
__swarmpay_opt 'tpm verify' --expect-pcrs file 'JSON allow list of PCR values'
__swarmpay_opt 'tpm verify' --ak file 'the AK public key (PEM) you trust for this peer'
__swarmpay_opt 'tpm verify' --enrolled '' 'require the AK to be enrolled in the trust store'
__swarmpay_opt 'tpm enroll' --peer text "the peer to enroll (a seller's escrow serve --listen)"
__swarmpay_opt 'tpm enroll' --peer-cmd text 'run COMMAND and speak to the peer over its stdin/stdout'
__swarmpay_opt 'tpm enroll' --peer-key text "the peer's static key: refuse any other"
__swarmpay_opt 'tpm enroll' --tpm-ca file 'PEM file of the TPM CA certificates you trust'
__swarmpay_opt 'tpm enroll' --label text 'a name for this identity in tpm trust list'
__swarmpay_cmd 'tpm trust' list 'the enrolled TPM identities'
__swarmpay_cmd 'tpm trust' remove 'stop trusting an enrolled AK'
__swarmpay_cmd 'tpm trust' help 'display help for command'
__swarmpay_arg 'tpm trust help' 'list remove help' 'command'
__swarmpay_file_arg 'tpm verify' 'attestation document'
__swarmpay_arg 'tpm help' 'provision status attest verify enroll trust help' 'command'

# channel
__swarmpay_cmd channel serve 'the payee: accept channels and payments, and see closes confirm'
__swarmpay_cmd channel open 'the payer: fund a channel to a payee; or finish an open cut short'
__swarmpay_cmd channel pay 'the payer: pay over a channel, pipelined; or a batch'
__swarmpay_cmd channel close 'close a channel (a payer asks the payee to)'
__swarmpay_cmd channel bump "raise the fee of a channel's pending close or refund (CPFP)"
__swarmpay_cmd channel refund 'the payer: take back the channel output after the expiry'
__swarmpay_cmd channel list 'the channels of this datadir, as the chain shows them now'
__swarmpay_cmd channel recover 'check every channel journal; rewrite a damaged one from what still verifies'
__swarmpay_cmd channel show 'one channel: status, paid, remaining, expiry in blocks, txids'
__swarmpay_cmd channel help 'display help for command'
__swarmpay_opt 'channel serve' --listen text 'listen for payers on TCP HOST:PORT (default 127.0.0.1:9735)'
__swarmpay_opt 'channel serve' --stdio '' 'serve one payer on stdin/stdout (for --peer-cmd)'
__swarmpay_opt 'channel serve' --min-capacity text 'smallest channel accepted (default 10000)'
__swarmpay_opt 'channel serve' --max-capacity text 'largest channel accepted (default 100000000)'
__swarmpay_opt 'channel serve' --min-expiry text 'least blocks to the expiry, more than --close-margin (default 36)'
__swarmpay_opt 'channel serve' --confirmations text 'funding confirmations before payments count, at least 1 (default 1)'
__swarmpay_opt 'channel serve' --close-margin text 'stop payments and close this many blocks before the expiry (default 24)'
__swarmpay_opt 'channel serve' --min-close-fee-rate text 'least close fee rate agreed at open, sat/vB (default 2)'
__swarmpay_opt 'channel serve' --bump-after text 'bump a close by CPFP after this many blocks unconfirmed (default 2)'
__swarmpay_opt 'channel serve' --poll text 'seconds between looks at every channel: close, confirm, bump (default 10)'
__swarmpay_opt 'channel serve' --max-connections text 'peers connected at once, handshakes included; more are closed at once (default 4096)'
__swarmpay_opt 'channel serve' --max-handshakes text 'handshakes run at once; later connections wait their turn (default 64)'
__swarmpay_opt 'channel serve' --handshake-timeout text 'a connection must finish its handshake within this, seconds (default 10)'
__swarmpay_opt 'channel serve' --idle-timeout text 'close a link that brings no whole frame for this long, seconds (default 120)'
__swarmpay_opt 'channel serve' --link-buffer text 'bytes one link may hold unhandled before it is not read (default 1048576)'
__swarmpay_opt 'channel serve' --send-queue text 'bytes that may wait for a peer that does not read; past it the peer is dropped (default 4194304)'
__swarmpay_opt 'channel serve' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'channel open' --peer text "the payee's HOST:PORT (channel serve --listen)"
__swarmpay_opt 'channel open' --peer-cmd text 'run COMMAND and speak to the payee over its stdin/stdout'
__swarmpay_opt 'channel open' --peer-key text "the payee's static key (hex): refuse any other"
__swarmpay_opt 'channel open' --capacity text 'sats to lock in the channel (required unless --resume)'
__swarmpay_opt 'channel open' --expiry text 'blocks until the payer may refund (default 144)'
__swarmpay_opt 'channel open' --fee-rate text 'fee rate of the funding (default 2 on regtest)'
__swarmpay_opt 'channel open' --resume text 'finish opening this channel: funding again, ticket to the payee'
__swarmpay_opt 'channel open' --wait '' 'wait for the confirmations the payee asked for'
__swarmpay_opt 'channel open' --timeout text 'with --wait: give up after this many seconds (default 3600)'
__swarmpay_opt 'channel open' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'channel pay' --count text 'make this many payments of SATS (default 1)'
__swarmpay_opt 'channel pay' --batch file:- 'JSON lines {"id", "channel", "sats"} from FILE or - (stdin)'
__swarmpay_opt 'channel pay' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'channel close' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'channel bump' --fee-rate text 'fee rate of the close (or refund) and its child together (required)'
__swarmpay_opt 'channel bump' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'channel refund' --fee-rate text 'fee rate of the refund (default 2 on regtest)'
__swarmpay_opt 'channel refund' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'channel list' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'channel recover' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'channel show' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_arg 'channel help' 'serve open pay close bump refund list recover show help' 'command'

# escrow
__swarmpay_cmd escrow offer 'the seller: encrypt an item and sign an offer of it'
__swarmpay_cmd escrow accept 'the buyer: check an offer, then fund the hash-locked contract'
__swarmpay_cmd escrow claim 'seller: take the coins revealing K; buyer: recover the item'
__swarmpay_cmd escrow refund 'the buyer: take the coins back after the timeout'
__swarmpay_cmd escrow serve 'the seller: serve offers, take acceptances, claim until SIGINT/SIGTERM'
__swarmpay_cmd escrow list 'the escrows of this datadir'
__swarmpay_cmd escrow show "one escrow: offer, state and each step's txid"
__swarmpay_cmd escrow help 'display help for command'
__swarmpay_opt 'escrow offer' --item file 'the item to sell'
__swarmpay_opt 'escrow offer' --price text 'what the buyer pays (sats)'
__swarmpay_opt 'escrow offer' --name text "the item's name in the offer (default: the file name)"
__swarmpay_opt 'escrow offer' --timeout text "fewest blocks from acceptance to the buyer's refund (default 144)"
__swarmpay_opt 'escrow offer' --max-timeout text 'most blocks from acceptance to the timeout (default 4032)'
__swarmpay_opt 'escrow offer' --confirmations text 'funding confirmations before the seller claims (default 1)'
__swarmpay_opt 'escrow offer' --expires text 'hours until the offer expires (default 24)'
__swarmpay_opt 'escrow offer' --attest '' "add a TPM quote whose nonce is the offer's digest"
__swarmpay_opt 'escrow offer' --pcrs text 'PCRs the quote covers (default 0,1,2,3,4,5,6,7)'
__swarmpay_opt 'escrow offer' --out file 'write the offer to FILE and its ciphertext to FILE.enc'
__swarmpay_opt 'escrow offer' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'escrow accept' --ciphertext file 'the ciphertext that came with the offer (default: OFFER.enc, else ID.enc beside the offer)'
__swarmpay_opt 'escrow accept' --peer text "the seller's HOST:PORT (escrow serve --listen)"
__swarmpay_opt 'escrow accept' --peer-cmd text 'run COMMAND and speak to the seller over its stdin/stdout'
__swarmpay_opt 'escrow accept' --peer-key text "the seller's static key (hex): refuse any other"
__swarmpay_opt 'escrow accept' --max-price text 'refuse an offer that asks more (sats)'
__swarmpay_opt 'escrow accept' --timeout text "blocks until the refund is possible (default 144, or the offer's most if less)"
__swarmpay_opt 'escrow accept' --require-attestation '' 'refuse an offer without a valid TPM attestation by an AK you enrolled (tpm enroll) or pinned (--ak)'
__swarmpay_opt 'escrow accept' --expect-pcrs file "JSON allow list of the seller's PCR values"
__swarmpay_opt 'escrow accept' --ak file "the seller TPM's AK public key (PEM) you trust"
__swarmpay_opt 'escrow accept' --enrolled '' 'require the attestation to be by a TPM enrolled with tpm enroll'
__swarmpay_opt 'escrow accept' --fee-rate text 'fee rate of the funding (default 2 on regtest)'
__swarmpay_opt 'escrow accept' --out file 'also write the acceptance for the seller to FILE'
__swarmpay_opt 'escrow accept' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_file_arg 'escrow accept' 'offer file'
__swarmpay_opt 'escrow claim' --acceptance file 'seller: the acceptance the buyer sent'
__swarmpay_opt 'escrow claim' --out file 'buyer: write the item to FILE'
__swarmpay_opt 'escrow claim' --wait '' "wait for the funding's confirmations (seller) or the claim (buyer)"
__swarmpay_opt 'escrow claim' --timeout text 'with --wait: give up after this many seconds (default 3600)'
__swarmpay_opt 'escrow claim' --force '' 'seller: claim even within the safety margin of the timeout'
__swarmpay_opt 'escrow claim' --margin text 'seller: blocks before the timeout from which claiming is refused (default 6)'
__swarmpay_opt 'escrow claim' --fee-rate text "seller: fee rate of the claim (default: the node's estimate, at least 2)"
__swarmpay_opt 'escrow claim' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'escrow refund' --fee-rate text 'fee rate of the refund (default 2 on regtest)'
__swarmpay_opt 'escrow refund' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'escrow serve' --listen text 'listen for buyers on TCP HOST:PORT (default 127.0.0.1:9736)'
__swarmpay_opt 'escrow serve' --stdio '' 'serve one buyer on stdin/stdout (for --peer-cmd)'
__swarmpay_opt 'escrow serve' --poll text 'seconds between looks at the escrows: fundings confirmed or gone, claims to send again or bump (default 5)'
__swarmpay_opt 'escrow serve' --margin text 'refuse acceptances and claims this near the timeout (default 6)'
__swarmpay_opt 'escrow serve' --fee-rate text "fee rate of the claims (default: the node's estimate at each claim, at least 2)"
__swarmpay_opt 'escrow serve' --bump-after text 'bump a claim by CPFP once it has waited this many blocks unconfirmed (default 2)'
__swarmpay_opt 'escrow serve' --max-connections text 'peers connected at once, handshakes included; more are closed at once (default 4096)'
__swarmpay_opt 'escrow serve' --max-handshakes text 'handshakes run at once; later connections wait their turn (default 64)'
__swarmpay_opt 'escrow serve' --handshake-timeout text 'a connection must finish its handshake within this, seconds (default 10)'
__swarmpay_opt 'escrow serve' --idle-timeout text 'close a link that brings no whole frame for this long, seconds (default 120)'
__swarmpay_opt 'escrow serve' --link-buffer text 'bytes one link may hold unhandled before it is not read (default 1048576)'
__swarmpay_opt 'escrow serve' --send-queue text 'bytes that may wait for a peer that does not read; past it the peer is dropped (default 4194304)'
__swarmpay_opt 'escrow serve' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'escrow list' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_opt 'escrow show' --passphrase-file file:- 'read the keystore passphrase from FILE, or - for stdin'
__swarmpay_arg 'escrow help' 'offer accept claim refund serve list show help' 'command'
