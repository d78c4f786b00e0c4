/**
 * Planted secrets and the scoring rule. Truth used:
 *  - each object's bytes read back through its OWN allocator's access path (slab.read, the
 *    process's page tables, the VM's EPT, the vmalloc area's frames), not through the ranges the
 *    secret recorded;
 *  - the scoring rule written out as cases with hand-computed expected counts (a run of >= 8
 *    correct bytes counts, shorter ones do not; conflicting observations are unknown; content
 *    windows match at any alignment);
 *  - random noise (seeded) scores 0, also when the noise claims the secret's true address.
 */
import { describe, expect, it } from 'vitest';
import { Xoshiro128 } from '../../src/linux/kaslr.ts';
import { VmallocAllocator } from '../../src/linux/vmalloc.ts';
import { ATTACK_MFBDS, ATTACK_SPECTRE_V1, SRC_L1D, SRC_LFB, Samples } from '../../src/attacks/sample.ts';
import { scoreLeak } from '../../src/attacks/score.ts';
import { MIN_RUN, type Secret, type SecretSet } from '../../src/attacks/secrets.ts';
import { PAGE_OFFSET, world } from './world.ts';

/** Append an address-known sample. */
function known(s: Samples, pa: number, bytes: ArrayLike<number>, at = 0): void {
  const off = s.add(ATTACK_SPECTRE_V1, SRC_L1D, 0, pa, pa, 0, -1, at, bytes.length);
  s.data.set(bytes, off);
}
/** Append an address-less sample (truePa given, as a structure entry would know it). */
function blind(s: Samples, bytes: ArrayLike<number>, truePa = -1, at = 0): void {
  const off = s.add(ATTACK_MFBDS, SRC_LFB, 0, -1, truePa, 0, -1, at, bytes.length);
  s.data.set(bytes, off);
}
const score = (secrets: SecretSet, s: Samples) => scoreLeak(secrets, s).map((x) => x.recovered);

describe('planting', () => {
  const w = world('skylake-sp', { seed: 7 });
  const p = w.processes.create('sshd');
  const obj = w.slab.alloc('cred_jar', p.owner.id);
  const vm = w.kvm.createVm('vm0', { ramBytes: 4 << 20, hugePages: false });
  const kpt = w.kpt;
  const vmalloc = new VmallocAllocator({ buddy: w.buddy, owners: w.owners, model: 'none', pt: kpt, start: 0xffffc90000000000n, end: 0xffffe8ffffffffffn });
  const area = vmalloc.vmalloc(3 * 4096, p.owner.id);
  const s1 = w.secrets.plantSlab(w.slab, obj.id, 'cred');
  const s2 = w.secrets.plantProcess(p, 0x1000ff0n, 64, 'heap key'); // crosses a page boundary
  const s3 = w.secrets.plantProcess(p, 0x411100n, 32, 'rodata');
  const s4 = w.secrets.plantGuest(vm, 0x1ff8, 16, 'guest key');
  const s5 = w.secrets.plantVmalloc(area, 100, 'vmalloc buf', 4096 - 50);

  it('records kind, owner and object', () => {
    expect([s1, s2, s3, s4, s5].map((s) => [s.id, s.kind, s.ownerName])).toEqual([
      [0, 'slab', 'sshd'], [1, 'process', 'sshd'], [2, 'page-cache', 'sshd'], [3, 'guest', 'vm0'], [4, 'vmalloc', 'sshd'],
    ]);
    expect(s1.object).toBe(`cred_jar object ${obj.id}`);
    expect(s1.bytes.length).toBe(184);
    expect(s2.ranges.length).toBe(2); // two distinct frames
    expect(s2.ranges.map((r) => [r.len, r.off])).toEqual([[16, 0], [48, 16]]);
  });

  it('writes the bytes where each allocator itself reads them', () => {
    expect(w.slab.read(obj.id)).toEqual(s1.bytes);
    expect(p.read(0x1000ff0n, 64)).toEqual(s2.bytes);
    expect(p.read(0x411100n, 32)).toEqual(s3.bytes);
    const g = new Uint8Array(16);
    for (let i = 0; i < 16; i++) g[i] = w.mem.readByte(vm.gpaToHpa(0x1ff8 + i));
    expect(g).toEqual(s4.bytes);
    const v = new Uint8Array(100);
    for (let i = 0; i < 100; i++) {
      const off = 4096 - 50 + i;
      v[i] = w.mem.readByte(area.pfns[Math.floor(off / 4096)] * 4096 + (off % 4096));
    }
    expect(v).toEqual(s5.bytes);
    // …and through the kernel's direct map (the kernel PGD pair maps it).
    expect(obj.va).toBe(PAGE_OFFSET + BigInt(obj.pa));
  });

  it('refuses overlaps, short secrets and unmapped addresses', () => {
    expect(() => w.secrets.plantPhys('dup', 0, obj.pa + 8, 16)).toThrow(/overlaps secret 'cred'/);
    expect(() => w.secrets.plantPhys('tiny', 0, 0x1000, MIN_RUN - 1)).toThrow(/at least 8/);
    expect(() => w.secrets.plantProcess(p, 0x9000000n, 16, 'nowhere')).toThrow(/not inside one VMA/);
  });

  it('same seed, same bytes; another seed, other bytes; bytes are the PRNG stream', () => {
    const bytes = (seed: number) => world('skylake-sp', { seed }).secrets.plantPhys('k', 0, 0x100200000, 64).bytes;
    expect(bytes(7)).toEqual(bytes(7));
    expect(bytes(7)).not.toEqual(bytes(8));
    const v = new Xoshiro128(7).nextU32(); // four bytes per draw, little endian
    expect(Array.from(bytes(7).subarray(0, 4))).toEqual([v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24]);
  });
});

describe('scoring rule', () => {
  const w = world('skylake-sp', { seed: 3 });
  const a = w.secrets.plantPhys('a', 0, 0x100100000, 64);
  const b = w.secrets.plantPhys('b', 0, 0x100100400, 32);
  const A = a.bytes;

  it('an address-known chunk counts the correct bytes in runs of >= 8', () => {
    const s = new Samples();
    const chunk = Array.from(A.subarray(0, 32));
    chunk[20] ^= 0xff; // runs [0,20) and [21,32): 20 + 11
    known(s, 0x100100000, chunk);
    expect(score(w.secrets, s)).toEqual([31, 0]);
    const t = new Samples();
    known(t, 0x100100000 + 40, A.subarray(40, 47)); // 7 correct bytes: below MIN_RUN
    expect(score(w.secrets, t)).toEqual([0, 0]);
    const u = new Samples();
    known(u, 0x100100001, A.subarray(0, 32)); // right bytes, wrong place
    expect(score(w.secrets, u)).toEqual([0, 0]);
  });

  it('pools address-known observations: byte-by-byte reads and split lines form runs', () => {
    const s = new Samples();
    for (let i = 0; i < 16; i++) known(s, 0x100100000 + i, [A[i]], 100 + i);
    known(s, 0x100100010, A.subarray(16, 20), 50); // 4 more bytes continuing the run
    const [sa] = scoreLeak(w.secrets, s);
    expect(sa.recovered).toBe(20);
    expect(sa.firstAt).toBe(50);
    expect(Array.from(sa.bitmap.subarray(0, 21))).toEqual([...Array(20).fill(1), 0]);
  });

  it('an address observed with two values is unknown (enumerating values scores nothing)', () => {
    const s = new Samples();
    known(s, 0x100100000, A.subarray(0, 16));
    known(s, 0x100100000, A.subarray(0, 16).map((x) => x ^ 1));
    expect(score(w.secrets, s)).toEqual([0, 0]);
  });

  it('an address-less chunk matches by content at any alignment, across secrets', () => {
    const s = new Samples();
    const chunk = new Uint8Array(64).fill(0x5a);
    chunk.set(A.subarray(10, 40), 5); // 30 secret bytes at chunk offset 5
    chunk.set(b.bytes.subarray(0, 9), 50); // 9 bytes of b
    blind(s, chunk);
    const [sa, sb] = scoreLeak(w.secrets, s);
    expect([sa.recovered, sb.recovered]).toEqual([30, 9]);
    expect(sa.bitmap.indexOf(1)).toBe(10);
    expect(sa.bitmap.lastIndexOf(1)).toBe(39);
    const t = new Samples();
    blind(t, A.subarray(3, 10)); // 7 bytes: too short to count
    expect(score(w.secrets, t)).toEqual([0, 0]);
  });

  it('random noise scores 0, even when it claims the secret\'s true address', () => {
    // 256 independent rounds against a 4 KiB secret: each round observes every address of the
    // secret once (no conflicts to hide behind) and offers 64 address-less 64-byte chunks. A rule
    // counting single correct bytes would score ~4k bytes, a run length of 2 would score ~60k
    // window hits; MIN_RUN = 8 must score nothing.
    const v = world('skylake-sp', { seed: 4 });
    const big = v.secrets.plantPhys('big', 0, 0x100300000, 4096);
    const r = new Xoshiro128(99);
    const noise = (n: number) => Uint8Array.from({ length: n }, () => r.nextU32() & 0xff);
    let total = 0;
    for (let round = 0; round < 256; round++) {
      const s = new Samples();
      for (let c = 0; c < 64; c++) {
        known(s, 0x100300000 + c * 64, noise(64));
        blind(s, noise(64), 0x100300000 + c * 64);
      }
      total += scoreLeak(v.secrets, s)[big.id].recovered;
    }
    expect(total).toBe(0);
    // One real leak among noise counts, and only it.
    const s = new Samples();
    blind(s, noise(64));
    known(s, 0x100300000 + 100, big.bytes.subarray(100, 164));
    expect(scoreLeak(v.secrets, s)[big.id].recovered).toBe(64);
  });

  it('accepts a list of secrets and a sample filter', () => {
    const s = new Samples();
    known(s, 0x100100000, A.subarray(0, 8));
    blind(s, b.bytes.subarray(0, 8));
    const list: Secret[] = [...w.secrets.all()];
    expect(scoreLeak(list, s, (i) => i === 1).map((x) => x.recovered)).toEqual([0, 8]);
  });
});
