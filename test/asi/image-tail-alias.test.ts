/**
 * The image-tail alias as a result (README "Finding: the image-tail alias"). Truth used: the
 * kernel's own rules — cleanup_highmap() keeps the high map up to roundup(_brk_end, PMD_SIZE)
 * (arch/x86/mm/init_64.c), only [_text, _end) is reserved, so frames past _end go to the page
 * allocator — and what each design clones (Chartre's whole image, the 2025 RFC's
 * VMALLOC_START..ULONG_MAX, the 2022 RFC's text and rodata only). The what-if highmapTail=unmap
 * (set_memory_np_noalias() on the tail, as free_kernel_image_pages() does for freed image
 * ranges) must make that cause vanish and leave every other result alone.
 */
import { describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { getDesign, makeContext, systemFor } from '../../src/asi/registry.ts';
import { buildSpace } from '../../src/asi/restricted.ts';
import { verifySpace, type VerifyResult } from '../../src/asi/verify.ts';
import type { KernelOptions } from '../../src/linux/kernel.ts';
import { parseMitigationCmdline } from '../../src/mitigations/cmdline.ts';
import { selectMitigations } from '../../src/mitigations/select.ts';
import { getProfile } from '../../src/uarch/profiles.ts';

const CAPS = ['la48-pti-nokaslr', 'la57-pti-nokaslr'].map((c) => join(resolve(import.meta.dirname, '../fixtures/captures'), c));
const tenantKinds = new Set(['process', 'vm', 'netns']);

function verify(name: string, o: { capture?: string; kernelOptions?: KernelOptions } = {}): VerifyResult {
  const d = getDesign(name);
  const sys = systemFor(d, o);
  return verifySpace(sys, d, buildSpace(sys, d, makeContext(sys, d)));
}

describe('kpti, google-asi-2022, netns-asi: no exposure of another tenant on both captures', () => {
  for (const cap of CAPS) {
    for (const name of ['kpti', 'google-asi-2022', 'netns-asi']) {
      it(`${name} on ${cap.split('/').pop()}`, () => {
        const v = verify(name, { capture: cap });
        expect(v.ok).toBe(true);
        expect(v.exposures.filter((e) => tenantKinds.has(e.ownerKind)).map((e) => e.why)).toEqual([]);
      });
    }
  }
});

describe('the image-tail alias vanishes with highmapTail=unmap', () => {
  for (const name of ['kvm-asi-2019', 'google-asi-2025']) {
    it(`${name}: other tenants' pages through the high map past _end, gone when the tail is unmapped`, () => {
      const keep = verify(name);
      const unmap = verify(name, { kernelOptions: { highmapTail: 'unmap' } });
      const tail = keep.exposures.filter((e) => e.cause === 'image-tail-alias');
      expect(tail.filter((e) => tenantKinds.has(e.ownerKind)).length).toBeGreaterThan(0);
      expect(unmap.ok).toBe(true);
      expect(unmap.exposuresByCause['image-tail-alias']).toBe(0);
      // Everything else is unchanged: the what-if touches the high map only.
      const rest = (v: VerifyResult) => v.exposures.filter((e) => e.cause !== 'image-tail-alias').map((e) => `${e.cause} ${e.owner} ${e.object} ${e.bytes}`).sort();
      expect(rest(unmap)).toEqual(rest(keep));
    });
  }

  it('google-asi-2025 on a capture too', () => {
    const cap = CAPS[0];
    expect(verify('google-asi-2025', { capture: cap }).exposuresByCause['image-tail-alias']).toBeGreaterThan(0);
    expect(verify('google-asi-2025', { capture: cap, kernelOptions: { highmapTail: 'unmap' } }).exposures).toEqual([]);
  });
});

describe('selectable from the kernel command line', () => {
  it('asi_highmap_tail=unmap reaches the mitigation state, and booting with it closes the alias', () => {
    const profile = getProfile('skylake-sp');
    const on = selectMitigations(profile, parseMitigationCmdline('asi=google asi_highmap_tail=unmap'));
    expect(selectMitigations(profile, parseMitigationCmdline('asi=google')).highmapTail).toBe('keep');
    expect(on.highmapTail).toBe('unmap');
    expect(verify('google-asi-2025', { kernelOptions: { highmapTail: on.highmapTail } }).exposures).toEqual([]);
  });
});
