/**
 * A boot the model cannot make from what it was given — RAM that cannot hold the image and the
 * boot's allocations, a configuration whose layout overlaps, more CPUs than a capture has —
 * with the input it comes from, so that whoever supplied that input (a capture folder, a
 * --iomem file, a scenario) can turn it into one line naming its file (capture.ts, the kernel
 * command, the run command). A BootError is about the input; any other error during boot is a
 * bug in the model.
 */
export type BootInput = 'ram' | 'cpus' | 'cpu' | 'config';

export class BootError extends RangeError {
  constructor(readonly input: BootInput, message: string) {
    super(message);
    this.name = 'BootError';
  }
}
