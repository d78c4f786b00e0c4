/**
 * A page-table capture (`x86-pt-oracle/1`, read by formats/ptimage.ts) with its registers loaded
 * into a CpuState, so the walker can run on it exactly as the captured CPU did.
 */
import { InputError, readTextMaybeGz } from '../formats/files.ts';
import { parsePtImageData, type PtImageData } from '../formats/ptimage.ts';
import { CpuState } from './cpu.ts';

export { InputError };

export interface PtImage extends PtImageData {
  cpu: CpuState;
}

/** Parse a capture's text and load its control registers. */
export function parsePtImage(text: string, file: string, maxPhysBits = 52): PtImage {
  const data = parsePtImageData(text, file, maxPhysBits);
  const c = data.control;
  const cpu = new CpuState(c.maxPhysBits);
  cpu.load({ cr0: c.cr0, cr3: c.cr3, cr4: c.cr4, efer: c.efer, cpl: c.cpl });
  return { ...data, cpu };
}

/** Read a `.json` or `.json.gz` capture. `maxPhysBits` defaults to 52 (the captures say 40; pass it when known). */
export function loadPtImage(file: string, maxPhysBits = 52): PtImage {
  return parsePtImage(readTextMaybeGz(file), file, maxPhysBits);
}
