/**
 * The x86-64 layout choices a kernel `.config` makes (formats/kconfig.ts reads the file; this
 * file knows what the options mean for src/linux/layout.ts).
 */
import { InputError } from '../formats/files.ts';
import type { Kconfig } from '../formats/kconfig.ts';
import type { LayoutConfig } from './layout.ts';

/** A numeric option within what the kernel's Kconfig allows (`rule` says where that is written); undefined when unset. */
function ranged(k: Kconfig, name: string, ok: (v: bigint) => boolean, rule: string): bigint | undefined {
  const v = k.number(name);
  if (v !== undefined && !ok(v)) {
    const at = k.get(name)!;
    throw new InputError(k.file, `CONFIG_${name}=${'raw' in at ? at.raw : String(v)}: expected ${rule}`, at.line);
  }
  return v;
}

/**
 * The Kconfig choices that move the x86-64 layout (src/linux/layout.ts), read from a .config.
 * The numbers are checked against arch/x86/Kconfig (6.1) and the link-time assertion of
 * arch/x86/kernel/vmlinux.lds.S (_end - LOAD_OFFSET <= KERNEL_IMAGE_SIZE).
 */
export function layoutConfigFromKconfig(k: Kconfig): LayoutConfig {
  if (k.values.size === 0) throw new InputError(k.file, 'no CONFIG_ settings: not a kernel .config');
  const randomizeBase = k.enabled('RANDOMIZE_BASE');
  const imageSize = randomizeBase ? 1n << 30n : 512n << 20n; // page_64_types.h KERNEL_IMAGE_SIZE
  const align = ranged(k, 'PHYSICAL_ALIGN', (v) => v >= 0x200000n && v <= 0x1000000n && v % 0x200000n === 0n,
    'a multiple of 0x200000 in 0x200000..0x1000000 (arch/x86/Kconfig PHYSICAL_ALIGN: "range 0x200000 0x1000000 if X86_64", "must be a multiple of 0x200000")');
  const start = ranged(k, 'PHYSICAL_START', (v) => v >= 0n && v < imageSize,
    `an address below KERNEL_IMAGE_SIZE 0x${imageSize.toString(16)} (vmlinux.lds.S asserts the image ends below it)`);
  const padding = ranged(k, 'RANDOMIZE_MEMORY_PHYSICAL_PADDING', (v) => v >= 0n && v <= 0x40n, '0x0..0x40 TiB (arch/x86/Kconfig: "range 0x0 0x40")');
  return {
    kasan: k.enabled('KASAN'),
    randomizeBase,
    physicalPaddingTb: k.enabled('RANDOMIZE_MEMORY') ? Number(padding ?? 0n) : undefined,
    physicalStart: start,
    physicalAlign: align,
    fixmap: {
      vsyscallEmulation: k.enabled('X86_VSYSCALL_EMULATION'),
      ohci1394DmaInit: k.enabled('PROVIDE_OHCI1394_DMA_INIT'),
      localApic: k.enabled('X86_LOCAL_APIC'),
      ioApic: k.enabled('X86_IO_APIC'),
      paravirtXxl: k.enabled('PARAVIRT_XXL'),
      intelMid: k.enabled('X86_INTEL_MID'),
      apeiGhes: k.enabled('ACPI_APEI_GHES'),
      intelTxt: k.enabled('INTEL_TXT'),
    },
  };
}
