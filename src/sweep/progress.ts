/**
 * A sweep's progress on stderr: a cli-progress bar on a terminal, else one plain line per finished
 * point (logs of batch jobs). The ETA is the mean time of the points finished so far times the
 * points left (points run in parallel, so it is wall time per point as the sweep measures it).
 */
import { SingleBar } from 'cli-progress';

export interface Progress {
  point(label: string): void;
  stop(): void;
}

const secs = (ms: number): string => (ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : ms < 3_600_000 ? `${Math.round(ms / 1000)}s` : `${(ms / 3_600_000).toFixed(1)}h`);

export function sweepProgress(total: number, tty: boolean, out: NodeJS.WritableStream = process.stderr): Progress {
  const t0 = performance.now();
  let done = 0;
  const eta = (): string => (done === 0 ? '?' : secs(((performance.now() - t0) / done) * (total - done)));
  if (tty && total > 0) {
    const bar = new SingleBar({ format: 'kasi sweep [{bar}] {value}/{total} points | ETA {myeta} | {label}', stream: out as NodeJS.WriteStream, hideCursor: true, clearOnComplete: true });
    bar.start(total, 0, { myeta: '?', label: '' });
    return {
      point: (label) => { done++; bar.update(done, { myeta: eta(), label: label.length > 50 ? `${label.slice(0, 49)}…` : label }); },
      stop: () => bar.stop(),
    };
  }
  return {
    point: (label) => { done++; out.write(`kasi sweep: point ${done}/${total} done (${label}) after ${secs(performance.now() - t0)}; ETA ${eta()}\n`); },
    stop: () => {},
  };
}
