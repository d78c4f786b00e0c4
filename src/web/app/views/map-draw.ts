// Drawing the address-space map on a canvas: a region ruler (the kernel's address_markers[]),
// then one lane per address space with its runs as rectangles. Pure drawing: the runs come from
// /api/map/runs; a run narrower than a pixel is drawn one pixel wide so nothing mapped vanishes.
import type { RunWindow, SpaceMap } from '../api.ts';

export const LABEL_W = 250;
export const RULER_H = 44;
export const LANE_H = 30;
export const LANE_GAP = 8;

const KIND_HUES: Record<string, number[]> = { kernel: [215], vm: [28, 8, 45], process: [140, 165, 95, 185], netns: [275, 300], none: [0] };
const CLASS_COLOURS: Record<string, string> = {
  sensitive: '#d64545', 'globally-nonsensitive': '#38a169', 'locally-nonsensitive': '#d69e2e', free: '#a0aec0', none: '#cbd5e0',
};

export function ownerColour(m: SpaceMap, i: number): string {
  const o = m.owners[i];
  if (o === undefined || o.kind === 'none') return '#cbd5e0';
  const same = m.owners.filter((x) => x.kind === o.kind);
  const k = same.indexOf(o);
  const hues = KIND_HUES[o.kind] ?? [200];
  const hue = hues[k % hues.length];
  const light = o.kind === 'kernel' ? 52 : 48 + 8 * Math.floor(k / hues.length);
  return `hsl(${hue} 62% ${light}%)`;
}

export const classColour = (m: SpaceMap, i: number): string => CLASS_COLOURS[m.classes[i]] ?? '#718096';

export interface View { from: number; to: number }

export function laneTop(i: number): number {
  return RULER_H + i * (LANE_H + LANE_GAP);
}

export function draw(ctx: CanvasRenderingContext2D, width: number, m: SpaceMap, v: View, runs: Map<string, RunWindow>, colourBy: 'owner' | 'class',
  sel: { lane: string; from: number; to: number } | null): void {
  const W = width - LABEL_W;
  const span = v.to - v.from;
  const X = (p: number) => LABEL_W + ((p - v.from) / span) * W;
  const height = laneTop(m.lanes.length);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  // The ruler: a tick and a name at each region start inside the view.
  ctx.fillStyle = '#f0f3f7';
  ctx.fillRect(LABEL_W, 0, W, RULER_H - 6);
  m.regions.forEach((r, i) => {
    if (r.end <= v.from || r.start >= v.to) return;
    const x0 = Math.max(LABEL_W, X(r.start));
    const x1 = Math.min(width, X(r.end));
    ctx.fillStyle = i % 2 ? '#e2e8f0' : '#edf2f7';
    ctx.fillRect(x0, 0, x1 - x0, RULER_H - 6);
    ctx.strokeStyle = '#718096';
    ctx.beginPath(); ctx.moveTo(x0 + 0.5, 0); ctx.lineTo(x0 + 0.5, height); ctx.stroke();
    const name = r.name;
    if (x1 - x0 > ctx.measureText(name).width + 8) {
      ctx.fillStyle = '#1d2430';
      ctx.fillText(name, x0 + 4, 12);
      ctx.fillStyle = '#5a6678';
      ctx.font = '10px ui-monospace, monospace';
      if (x1 - x0 > 120) ctx.fillText(r.va, x0 + 4, 28);
      ctx.font = '12px system-ui, sans-serif';
    }
  });
  m.lanes.forEach((lane, i) => {
    const y = laneTop(i);
    ctx.fillStyle = '#1d2430';
    ctx.fillText(lane.title.length > 38 ? lane.title.slice(0, 37) + '…' : lane.title, 6, y + LANE_H / 2);
    ctx.fillStyle = '#f7f9fb';
    ctx.fillRect(LABEL_W, y, W, LANE_H);
    const w = runs.get(lane.id);
    if (w === undefined) return;
    for (const r of w.runs) {
      if (r[1] <= v.from || r[0] >= v.to) continue;
      const x0 = X(Math.max(r[0], v.from));
      const x1 = X(Math.min(r[1], v.to));
      ctx.fillStyle = colourBy === 'owner' ? ownerColour(m, r[2]) : classColour(m, r[3]);
      ctx.fillRect(x0, y, Math.max(1, x1 - x0), LANE_H);
    }
    // Page edges once a page is wider than 6 px.
    if (W / span > 6) {
      ctx.strokeStyle = 'rgba(255,255,255,0.7)';
      for (let p = Math.ceil(v.from); p < v.to; p++) { const x = Math.round(X(p)) + 0.5; ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x, y + LANE_H); ctx.stroke(); }
    }
    if (sel && sel.lane === lane.id) {
      ctx.strokeStyle = '#1d2430';
      ctx.lineWidth = 2;
      const x0 = X(Math.max(sel.from, v.from));
      ctx.strokeRect(x0, y - 1, Math.max(3, X(Math.min(sel.to, v.to)) - x0), LANE_H + 2);
      ctx.lineWidth = 1;
    }
  });
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function sizeText(bytes: number): string {
  let u = 0;
  let b = bytes;
  while (b >= 1024 && u < UNITS.length - 1) { b /= 1024; u++; }
  return `${Number.isInteger(b) ? b : b.toFixed(1)} ${UNITS[u]}`;
}

/** A page number of the axis as its canonical VA (the kernel half sign-extended), as hex. */
export function pageVa(p: number): string {
  const va = BigInt(Math.floor(p)) << 12n;
  const full = va >= 1n << 47n ? va | 0xffff000000000000n : va;
  return '0x' + BigInt.asUintN(64, full).toString(16).padStart(16, '0');
}

/** A typed VA as its page on the axis, or null when it is not canonical 48-bit hex. */
export function vaPage(text: string): number | null {
  if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(text.trim())) return null;
  const t = text.trim();
  const va = BigInt(t.startsWith('0x') ? t : '0x' + t);
  if (va < 1n << 47n) return Number(va >> 12n);
  if (va >= 0xffff800000000000n) return Number((va - 0xffff000000000000n) >> 12n);
  return null;
}
