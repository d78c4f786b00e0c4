/**
 * Scenarios a request may run (issue 13, "Hardening"): an example by name from the fixed list
 * read once at startup from examples/ (a request never names a path), or an uploaded YAML text
 * parsed in memory. An upload may not name a file on this machine (kernel.capture, a workload's
 * `from.file`): both are refused at their line and column, before the loader would resolve them.
 * Every error is the loader's own message (scenario/load.ts: `line:column: field …`) without the
 * file name, as JSON.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { InputError } from '../../formats/files.ts';
import { LIMITS } from '../../formats/limits.ts';
import { parseScenario, ScenarioError } from '../../scenario/load.ts';
import type { Scenario } from '../../sim/scenario-types.ts';

export const EXAMPLES_DIR = fileURLToPath(new URL('../../../examples/', import.meta.url));
/** The name uploads carry in the loader (stripped from its messages). */
const UPLOAD = 'upload';

/** A request's bad input: the HTTP status and the JSON body. */
export class RequestError extends Error {
  constructor(readonly status: number, message: string, readonly line?: number, readonly column?: number) {
    super(message);
  }
  body(): Record<string, unknown> {
    return { error: this.message, ...(this.line !== undefined ? { line: this.line, column: this.column } : {}) };
  }
}

export interface Example { readonly name: string; readonly file: string; readonly text: string }

/** The examples, by name (file name without .yaml), read once. */
export function loadExamples(dir = EXAMPLES_DIR): Map<string, Example> {
  const out = new Map<string, Example>();
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml')).sort()) {
    const file = join(dir, f);
    out.set(f.slice(0, -5), { name: f.slice(0, -5), file, text: readFileSync(file, 'utf8') });
  }
  return out;
}

function refuse(lc: LineCounter, node: Node, what: string): never {
  const p = lc.linePos(node.range?.[0] ?? 0);
  throw new RequestError(400, `${p.line}:${p.col}: ${what}`, p.line, p.col);
}

/** Parse an uploaded scenario, or throw a RequestError with its line and column. */
export function parseUpload(text: string): Scenario {
  if (Buffer.byteLength(text) > LIMITS.scenarioBytes) throw new RequestError(413, `the scenario is above ${LIMITS.scenarioBytes} bytes, the most kasi reads from a scenario`);
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  if (doc.errors.length === 0 && isMap(doc.contents)) {
    const cap = doc.getIn(['kernel', 'capture'], true) as Node | undefined;
    if (cap !== undefined && !(isScalar(cap) && cap.value === null)) refuse(lc, cap, 'kernel.capture: expected null in an upload (a capture is a folder on the server: run it with kasi run)');
    const w = doc.get('workload', true);
    if (isSeq(w)) {
      w.items.forEach((item, i) => {
        const from = isMap(item) ? (item.get('from', true) as Node | undefined) : undefined;
        if (from !== undefined) refuse(lc, from, `workload[${i}].from: expected a mix in an upload (an imported tool output is a file on the server: run it with kasi run)`);
      });
    }
  }
  try {
    return parseScenario(text, UPLOAD);
  } catch (err) {
    if (err instanceof ScenarioError) throw new RequestError(400, err.message.slice(UPLOAD.length + 1), err.pos.line, err.pos.column);
    if (err instanceof InputError) throw new RequestError(400, err.message.startsWith(UPLOAD + ':') ? err.message.slice(UPLOAD.length + 1).trimStart() : err.message, err.line);
    throw err;
  }
}
