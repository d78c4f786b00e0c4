/**
 * The address-space map the UI draws (report/space-map.ts, /api/map*). Truth: a read-only walk
 * of each lane's root (asi/restricted.ts probe(), not the leaf enumerator the map is built from)
 * on a system booted the same way, the allocator's owner of the frame it reaches, the kernel's
 * region table, and the design's rule that a VM's restricted space does not map another VM's
 * sensitive memory in the direct map (google-asi-2025: guest memory is __GFP_SENSITIVE).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../src/web/server/app.ts';
import { getDesign, makeContext, systemFor } from '../../src/asi/registry.ts';
import { buildSpace, probe, Probe } from '../../src/asi/restricted.ts';
import { compareRegions } from '../../src/asi/verify.ts';
import type { MapDetail, RunWindow, SpaceMap } from '../../src/report/space-map.ts';

const app = buildServer({ db: null, appDir: null });
afterAll(() => app.close());
const get = async <T>(url: string): Promise<T> => (await app.inject({ url })).json() as T;
const vaOf = (p: number) => { const va = BigInt(p) << 12n; return va >= 1n << 47n ? va | 0xffff000000000000n : va; };

describe('the address-space map', () => {
  it('has a lane per address space along the kernel\'s region table, and runs that agree with a walk of each root', async () => {
    const m = await get<SpaceMap>('/api/map');
    expect(m.lanes.map((l) => l.id)).toEqual(['kernel', 'kpti-user', 'asi-vm0', 'asi-vm1', 'kvm-asi-2019-vm0', 'google-asi-2022-vm0', 'netns0', 'netns1', 'sci-proc0']);
    // dump_pagetables.c address_markers[] order (4-level, Documentation/arch/x86/x86_64/mm.rst)
    expect(m.regions.map((r) => r.name)).toEqual(['User Space', 'Kernel Space', 'LDT remap', 'Low Kernel Mapping', 'vmalloc() Area', 'Vmemmap',
      'CPU entry Area', 'ESPfix Area', 'EFI Runtime Services', 'High Kernel Mapping', 'Modules', 'End Modules', 'Fixmap Area']);
    expect(m.regions.find((r) => r.name === 'High Kernel Mapping')!.va).toBe('0xffffffff80000000');

    const d = getDesign('google-asi-2025');
    const sys = systemFor(d);
    const roots: Record<string, number> = { kernel: sys.kernel.kernelRoot, 'asi-vm0': buildSpace(sys, d, makeContext(sys, d, { vm: 0 })).root };
    const p = new Probe();
    for (const lane of ['kernel', 'asi-vm0']) {
      const w = await get<RunWindow>(`/api/map/runs?lane=${lane}&from=0&to=${m.axisPages}&max=100000`);
      expect(w.binPages).toBe(1);
      expect(w.runs.length).toBe(m.lanes.find((l) => l.id === lane)!.runs);
      // Every 97th run, and each run's first and last page: mapped, and owned as the map says.
      for (let i = 0; i < w.runs.length; i += 97) {
        const [s, e, owner] = w.runs[i];
        for (const page of [s, e - 1]) {
          const va = vaOf(page);
          expect(probe(sys.mem, roots[lane], 4, Number(va & 0xffffffffn), Number(va >> 32n), p), `${lane} ${va.toString(16)}`).toBe(true);
          const pa = p.frame + Number(va % BigInt(2 ** p.pageShift));
          const a = sys.allocationAtPa(pa);
          expect(a === null ? 'unowned' : sys.owners.get(a.owner).name).toBe(m.owners[owner].name);
        }
        // ... and the page just past a run that ends where the next one does not start is unmapped.
        const next = w.runs[i + 1];
        if (next && next[0] > e) {
          const va = vaOf(e);
          expect(probe(sys.mem, roots[lane], 4, Number(va & 0xffffffffn), Number(va >> 32n), p)).toBe(false);
        }
      }
    }
  });

  it('maps per region what kasi asi\'s region table (the layout\'s own regions, asi/verify.ts) counts', async () => {
    const m = await get<SpaceMap>('/api/map');
    const d = getDesign('google-asi-2025');
    const sys = systemFor(d);
    const rows = compareRegions(sys, buildSpace(sys, d, makeContext(sys, d, { vm: 0 })));
    const lane = m.lanes.find((l) => l.id === 'asi-vm0')!;
    const bytes = (marker: string) => lane.regionPages[m.regions.findIndex((r) => r.name === marker)] * 4096;
    for (const [layout, marker] of [['direct_map', 'Low Kernel Mapping'], ['vmemmap', 'Vmemmap'], ['espfix', 'ESPfix Area'], ['cpu_entry_area', 'CPU entry Area']]) {
      const row = rows.find((r) => r.region === layout)!;
      expect(bytes(marker), layout).toBe(row.restrictedBytes);
    }
    expect(bytes('Low Kernel Mapping')).toBeGreaterThan(0);
  });

  it('keeps vm1\'s sensitive memory out of vm0\'s direct map, and shows it in the full tables', async () => {
    const m = await get<SpaceMap>('/api/map');
    const dm = m.regions.find((r) => r.name === 'Low Kernel Mapping')!;
    const vm1 = m.owners.findIndex((o) => o.name === 'vm1');
    const sensitive = m.classes.indexOf('sensitive');
    const pages = async (lane: string) => (await get<RunWindow>(`/api/map/runs?lane=${lane}&from=${dm.start}&to=${dm.end}&max=100000`)).runs
      .filter((r) => r[2] === vm1 && r[3] === sensitive).reduce((n, r) => n + r[1] - r[0], 0);
    expect(await pages('kernel')).toBeGreaterThan(0);
    expect(await pages('asi-vm0')).toBe(0);
  });

  it('zooms to one 4 KiB page and answers a click with its leaf, frame, owner and why it is mapped', async () => {
    const m = await get<SpaceMap>('/api/map');
    const text = 0xffffffff81000000n; // the kernel image's text, mapped in every kernel space
    const page = Number((text - 0xffff000000000000n) >> 12n);
    const w = await get<RunWindow>(`/api/map/runs?lane=kernel&from=${page}&to=${page + 1}`);
    expect(w.runs.length).toBe(1);
    expect(w.runs[0][0]).toBeLessThanOrEqual(page);
    expect(w.runs[0][1]).toBeGreaterThan(page);
    const det = await get<MapDetail>(`/api/map/detail?lane=asi-vm0&from=${page}&to=${page + 1}`);
    expect(det.leaves.length).toBe(1);
    expect(BigInt(det.leaves[0].va) <= text && text < BigInt(det.leaves[0].va) + BigInt(det.leaves[0].size)).toBe(true);
    // google-asi-2025's own reason for the image: the kernel half clones VMALLOC_START up (its global spec).
    expect(det.why).toContain('asi_clone_range(VMALLOC_START, ULONG_MAX)');
    expect(det.owners).toContain('kernel');
    // the whole axis at 1000 px: a few thousand entries at most, each counted
    const all = await get<RunWindow>(`/api/map/runs?lane=kernel&from=0&to=${m.axisPages}&max=1000`);
    expect(all.runs.length).toBeLessThanOrEqual(2000);
    expect(all.runs.reduce((n, r) => n + r[6], 0)).toBe(m.lanes[0].runs);
    expect((await app.inject({ url: '/api/map/runs?lane=../x&from=0&to=1' })).statusCode).toBe(400);
    expect((await app.inject({ url: '/api/map/runs?lane=nope&from=0&to=1' })).statusCode).toBe(404);
  });
});
