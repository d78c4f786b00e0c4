/** JSON schemas of every request body, query and params (fastify validates them with ajv; a failure is a 400 with a JSON error). */
const NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' } as const;
const PAGE = { type: 'number', minimum: 0, maximum: 2 ** 36 } as const;
const strict = (properties: Record<string, object>, required: string[] = []) => ({ type: 'object', additionalProperties: false, properties, required });

export const S = {
  name: strict({ name: NAME }, ['name']),
  id: strict({ id: { type: 'integer', minimum: 1, maximum: 1e15 } }, ['id']),
  ab: strict({ a: { type: 'integer', minimum: 1, maximum: 1e15 }, b: { type: 'integer', minimum: 1, maximum: 1e15 } }, ['a', 'b']),
  limit: strict({ limit: { type: 'integer', minimum: 1, maximum: 10000 } }),
  check: strict({ yaml: { type: 'string', maxLength: 1 << 20 } }, ['yaml']),
  run: strict({
    example: NAME, yaml: { type: 'string', maxLength: 1 << 20 },
    seeds: { type: 'integer', minimum: 1, maximum: 64 }, seed: { type: 'integer', minimum: 0, maximum: 0xffffffff },
    duration: { type: 'string', maxLength: 32 },
  }),
  walk: strict({
    capture: NAME, va: { type: 'string', maxLength: 18 }, root: { type: 'string', maxLength: 18 },
    access: { type: 'string', enum: ['read', 'write', 'exec'] }, user: { type: 'boolean' },
    cr4: { type: 'string', maxLength: 18 }, wp: { type: 'boolean' },
  }, ['capture', 'va']),
  window: strict({ lane: NAME, from: PAGE, to: PAGE, max: { type: 'integer', minimum: 1, maximum: 200000 } }, ['lane', 'from', 'to']),
} as const;
