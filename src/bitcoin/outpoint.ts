/** A transaction output by the transaction's id (hex, as the node shows it) and the output's index. */
export interface Outpoint {
  txid: string;
  vout: number;
}
