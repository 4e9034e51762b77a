/**
 * FNV-1a, 64-bit, over the UTF-8 bytes of a string: the hash every replica uses to place ring
 * members and keys, so all replicas compute the same ring from the same Leases. It is also the
 * hash KEP-5866's shardSelector uses (over metadata.uid), so ring ranges can be handed to an
 * apiserver that serves it.
 */
const OFFSET_BASIS = 0xcbf29ce484222325n;
const PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;

const encoder = new TextEncoder();

export function fnv1a64(s: string): bigint {
  let h = OFFSET_BASIS;
  for (const byte of encoder.encode(s)) {
    h ^= BigInt(byte);
    h = (h * PRIME) & MASK;
  }
  return h;
}

/**
 * murmur3's 64-bit finalizer (fmix64). FNV-1a alone spreads a change in the last bytes of its
 * input (`member#0`, `member#1`, …) over few high bits, so ring points cluster; mixing its
 * output gives every input bit an even chance to flip every output bit. Ring positions are
 * placed at ringHash(s) = fmix64(fnv1a64(s)).
 */
export function fmix64(h: bigint): bigint {
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK;
  h ^= h >> 33n;
  return h;
}

/** Where the ring places a member's virtual node or a key: fmix64(fnv1a64(s)). */
export function ringHash(s: string): bigint {
  return fmix64(fnv1a64(s));
}

/** `0x` and 16 lower-case hex digits, the form KEP-5866's shardRange takes. */
export function hex64(h: bigint): string {
  return `0x${h.toString(16).padStart(16, '0')}`;
}
