/** Sizes print as 4KiB / 2MiB / 1GiB (docs/DESIGN.md conventions), with the largest unit that divides exactly. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let u = 0;
  let n = bytes;
  while (u < units.length - 1 && n >= 1024 && n % 1024 === 0) {
    n /= 1024;
    u++;
  }
  return `${n}${units[u]}`;
}

/** An address as the kernel prints it: 0x + 16 hex digits. */
export function formatAddr(lo: number, hi: number): string {
  return '0x' + (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}
