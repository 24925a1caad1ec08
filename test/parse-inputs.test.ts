/** Amounts, addresses, fee rates and mnemonics as users type them. */
import { parseSats, MAX_MONEY, formatBtc } from '../src/bitcoin/amount.js';
import { addressToScript } from '../src/bitcoin/address.js';
import { checkFeeRate, dustThreshold, MAX_FEE_RATE } from '../src/bitcoin/policy.js';
import { checkMnemonic, newMnemonic } from '../src/wallet/mnemonic.js';
import { thrown } from './helpers/expect.js';
import { FeeRate } from '../src/bitcoin/fee-rate.js';

const code = (f: () => unknown): string => thrown(f).code;

describe('amounts', () => {
  test('whole positive satoshis are read exactly', () => {
    expect(parseSats('1')).toBe(1n);
    expect(parseSats('2100000000000000')).toBe(MAX_MONEY);
  });
  test.each(['0', '-5', '1.5', '1e5', '', 'abc', '0x10', '2100000000000001', ' 12 34'])('"%s" is refused', (s) => {
    expect(code(() => parseSats(s))).toBe('INVALID_AMOUNT');
  });
  test('BTC formatting is exact', () => {
    expect(formatBtc(123456789n)).toBe('1.23456789');
    expect(formatBtc(1n)).toBe('0.00000001');
  });
});

describe('addresses', () => {
  const mainnet = 'bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu';
  const testnet = 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx';
  test('a mainnet address on mainnet', () => expect(addressToScript(mainnet, 'mainnet')).toHaveLength(22));
  test('a tb1 address on mainnet is WRONG_NETWORK', () => expect(code(() => addressToScript(testnet, 'mainnet'))).toBe('WRONG_NETWORK'));
  test('a mainnet address on regtest is WRONG_NETWORK', () => expect(code(() => addressToScript(mainnet, 'regtest'))).toBe('WRONG_NETWORK'));
  test('a typo is INVALID_ADDRESS', () => expect(code(() => addressToScript(mainnet.slice(0, -1) + 'x', 'mainnet'))).toBe('INVALID_ADDRESS'));
  test('garbage is INVALID_ADDRESS', () => expect(code(() => addressToScript('hello', 'regtest'))).toBe('INVALID_ADDRESS'));
});

describe('policy', () => {
  test('dust thresholds match Bitcoin Core', () => {
    expect(dustThreshold(addressToScript('bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu', 'mainnet'))).toBe(294n);
    expect(dustThreshold(addressToScript('bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3', 'mainnet'))).toBe(330n);
    expect(dustThreshold(addressToScript('1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2', 'mainnet'))).toBe(546n);
    expect(dustThreshold(addressToScript('3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy', 'mainnet'))).toBe(540n);
  });
  test('fee rates above the cap are FEE_TOO_HIGH', () => {
    expect(checkFeeRate(MAX_FEE_RATE)).toBe(MAX_FEE_RATE);
    expect(code(() => checkFeeRate(MAX_FEE_RATE.justAbove()))).toBe('FEE_TOO_HIGH');
    expect(code(() => checkFeeRate(FeeRate.ofSatPerVb(0n)))).toBe('INVALID_AMOUNT');
  });
});

describe('mnemonics', () => {
  test('new ones have 24 valid words', () => {
    const m = newMnemonic();
    expect(m.split(' ')).toHaveLength(24);
    expect(checkMnemonic(m)).toBe(m);
  });
  test('extra white space and capitals are forgiven', () => {
    const m = newMnemonic();
    expect(checkMnemonic(`  ${m.toUpperCase().replace(/ /g, '\n')} `)).toBe(m);
  });
  test('an unknown word, a missing word and a bad checksum are INVALID_MNEMONIC', () => {
    const words = newMnemonic().split(' ');
    expect(code(() => checkMnemonic([...words.slice(1), 'notaword'].join(' ')))).toBe('INVALID_MNEMONIC');
    expect(code(() => checkMnemonic(words.slice(1).join(' ')))).toBe('INVALID_MNEMONIC');
    // Twelve known words whose checksum is wrong (the valid vector ends in "about").
    expect(code(() => checkMnemonic('abandon '.repeat(11) + 'abandon'))).toBe('INVALID_MNEMONIC');
  });
});
