/**
 * The demo's story on embedded defaults: a fresh regtest btcd in a temporary folder, a
 * buyer and a seller wallet, the faucet funds the buyer, the buyer pays the seller, and
 * the real node confirms it. Each step reports through `onStep`; nothing here prints.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { embeddedRpc, startNode, stopNode, nodeDir } from '../chain/embedded-node.js';
import type { RpcClient } from '../chain/rpc-client.js';
import { BtcdChain } from '../chain/rpc-chain.js';
import { FAUCET_ADDRESS, faucetPay } from '../wallet/faucet.js';
import { newMnemonic } from '../wallet/mnemonic.js';
import { createWallet, receiveAddress, unlockSeed, walletAccount, walletBalance } from '../wallet/wallet.js';
import { planSend, signSend } from '../wallet/send.js';
import { passphraseUnlocker } from '../keystore/keystore.js';

export interface DemoResult {
  network: 'regtest';
  workDir: string | null;
  node: { impl: 'btcd'; height: number };
  funding: { txid: string; sats: bigint };
  payment: { txid: string; sats: bigint; fee: bigint };
  balances: { buyer_sats: bigint; seller_sats: bigint };
  seconds: number;
}

export interface DemoOptions {
  keep: boolean;
  onStep: (msg: string) => void;
}

export const DEMO_FUNDING = 100_000_000n;
export const DEMO_PAYMENT = 25_000_000n;
const FEE_RATE = 2n;

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const work = mkdtempSync(path.join(tmpdir(), 'swarmpay-demo-'));
  const dirs = { buyer: path.join(work, 'buyer', 'regtest'), seller: path.join(work, 'seller', 'regtest') };
  const node = nodeDir(dirs.buyer);
  let rpc: RpcClient | undefined;
  try {
    opts.onStep(`starting a fresh regtest btcd in ${work}`);
    const { height } = await startNode(node, 'btcd', FAUCET_ADDRESS);
    rpc = embeddedRpc(node).client;
    const chain = new BtcdChain('regtest', rpc);
    opts.onStep(`node up at height ${height} (segwit active)`);

    // Demo wallets live for one run; their passphrases are random and never leave memory.
    const pass = { buyer: randomBytes(16).toString('hex'), seller: randomBytes(16).toString('hex') };
    for (const who of ['buyer', 'seller'] as const) {
      const pub = createWallet(dirs[who], 'regtest', pass[who], newMnemonic());
      opts.onStep(`${who} wallet created: ${pub.fingerprint} ${pub.path}`);
    }

    const buyerAddr = await receiveAddress(chain, dirs.buyer, 'regtest');
    const funding = await faucetPay(chain, buyerAddr.address, DEMO_FUNDING);
    await chain.mine(1);
    opts.onStep(`faucet paid the buyer ${DEMO_FUNDING} sats: ${funding.txid}`);

    const sellerAddr = await receiveAddress(chain, dirs.seller, 'regtest');
    const plan = await planSend(chain, walletAccount(dirs.buyer, 'regtest'), 'regtest', sellerAddr.address, DEMO_PAYMENT, FEE_RATE);
    const signed = signSend(plan, await unlockSeed(dirs.buyer, 'regtest', passphraseUnlocker(pass.buyer)), 'regtest');
    await chain.broadcast(signed.hex);
    await chain.mine(1);
    await chain.waitForConfirmations(signed.txid, 1, { pollMs: 100, timeoutMs: 30_000 });
    opts.onStep(`buyer paid the seller ${DEMO_PAYMENT} sats (fee ${signed.fee}): ${signed.txid}, confirmed`);

    const [buyer, seller] = await Promise.all([walletBalance(chain, dirs.buyer, 'regtest'), walletBalance(chain, dirs.seller, 'regtest')]);
    return {
      network: 'regtest',
      workDir: opts.keep ? work : null,
      node: { impl: 'btcd', height: await chain.tipHeight() },
      funding: { txid: funding.txid, sats: DEMO_FUNDING },
      payment: { txid: signed.txid, sats: DEMO_PAYMENT, fee: signed.fee },
      balances: { buyer_sats: buyer.confirmed, seller_sats: seller.confirmed },
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    rpc?.close();
    if (!opts.keep) {
      await stopNode(node);
      rmSync(work, { recursive: true, force: true });
    }
  }
}
