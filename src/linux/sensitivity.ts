/**
 * Sensitivity models as data: which allocations an ASI design keeps out of the restricted
 * address space.
 *
 *  - `none`:     no ASI; every allocation is class 0 and nothing is separated (mainline 6.1).
 *  - `asi-2022`: Junaid Shahid's RFC (lore 20220223052223.1202152-1-junaids@google.com), an
 *                allowlist: "By default, all memory is considered sensitive unless specifically
 *                categorized otherwise"; annotated memory is *globally* non-sensitive (mapped in
 *                every restricted space) or *locally* non-sensitive (mapped only in the restricted
 *                space of one process or VM). Classes never share a physical page, and local
 *                memory of different processes never shares one either (same cover letter).
 *  - `asi-2025`: Brendan Jackman's RFCs (lore 20240712-asi-rfc-24-v1-0-144b319a40d8@google.com
 *                and 20250110-asi-rfc-v2-v2-0-8419288bc805@google.com), a denylist: a new
 *                __GFP_SENSITIVE flag "and everything else is considered non-sensitive"; local
 *                non-sensitivity was removed. GFP_USER carries __GFP_SENSITIVE, so user, guest
 *                and page-cache pages are sensitive; slab is not supported (always nonsensitive).
 *
 * An allocation *kind* names what is allocated: a slab cache name ('task_struct', 'cred_jar',
 * …), 'kmalloc' or a kmalloc user ('fdtable', …), or a page kind ('anon', 'page-cache',
 * 'guest-memory', 'page-table', 'kernel-stack', 'vmalloc', 'kvm-run', 'kvm', 'percpu').
 * Each rule gives the class of the frames (as seen through the direct map) and, for memory
 * that is also mapped through vmalloc, the class of that second mapping, which can differ:
 * both RFCs map a task's vmalloc'd stack into the restricted space while its frames' direct-map
 * alias stays unmapped. Each rule cites the RFC text it comes from, or says "assumption".
 */
import type { OwnerKind } from './owners.ts';

/** Class numbers as stored in the allocators' Uint8Array columns. */
export const CLASS_SENSITIVE = 0;
export const CLASS_GLOBAL_NONSENSITIVE = 1;
export const CLASS_LOCAL_NONSENSITIVE = 2;
/** A free frame (or a frame that is not RAM): no allocation, no class. */
export const CLASS_FREE = 255;

export type ClassName = 'sensitive' | 'global' | 'local';
const CLASS_OF: Record<ClassName, number> = { sensitive: CLASS_SENSITIVE, global: CLASS_GLOBAL_NONSENSITIVE, local: CLASS_LOCAL_NONSENSITIVE };

export function className(cls: number): string {
  switch (cls) {
    case CLASS_SENSITIVE: return 'sensitive';
    case CLASS_GLOBAL_NONSENSITIVE: return 'globally-nonsensitive';
    case CLASS_LOCAL_NONSENSITIVE: return 'locally-nonsensitive';
    case CLASS_FREE: return 'free';
    default: return `class-${cls}`;
  }
}

export interface Rule {
  readonly kind: string;
  /** Class of the frames (their direct-map alias). */
  readonly cls: ClassName;
  /** Class of the vmalloc mapping of the same frames, when the kind is vmalloc'd and it differs. */
  readonly mapping?: ClassName;
  /** The RFC text this comes from, or "assumption: …". */
  readonly source: string;
}

export type ModelName = 'none' | 'asi-2022' | 'asi-2025';
export const MODEL_NAMES: readonly ModelName[] = ['none', 'asi-2022', 'asi-2025'];

export interface SensitivityModel {
  readonly name: ModelName;
  readonly description: string;
  /** Classes this model uses. */
  readonly classes: readonly number[];
  /** Applies to every kind without a rule of its own. */
  readonly fallback: Rule;
  readonly rules: ReadonlyMap<string, Rule>;
}

/** Page kinds (not slab caches) the models know about. */
export const PAGE_KINDS = ['anon', 'page-cache', 'guest-memory', 'page-table', 'kernel-stack', 'vmalloc', 'kvm-run', 'kvm', 'percpu'] as const;

// -- sources ------------------------------------------------------------------------------
const R22 = 'ASI RFC 2022 cover letter (lore 20220223052223.1202152-1-junaids@google.com)';
const R22_ANN = 'ASI RFC 2022 patch "mm: asi: Annotation of dynamic variables to be nonsensitive" (O. Weisse)';
const R24 = 'ASI RFC 2024 cover letter (lore 20240712-asi-rfc-24-v1-0-144b319a40d8@google.com)';
const R25 = 'ASI RFC v2 2025 cover letter (lore 20250110-asi-rfc-v2-v2-0-8419288bc805@google.com)';
const R25_P14 = 'ASI RFC v2 14/29 "mm: asi: Map non-user buddy allocations as nonsensitive"';
const R24_VMALLOC = 'ASI RFC 2024/2025 "mm: asi: Map vmalloc/vmap data as nonsensitive"';

function rule(kind: string, cls: ClassName, source: string, mapping?: ClassName): Rule {
  return mapping === undefined ? { kind, cls, source } : { kind, cls, mapping, source };
}

const ASI_2022_RULES: Rule[] = [
  // Slab caches annotated in kernel/fork.c, lib/radix-tree.c, fs/eventpoll.c, arch/x86/kvm/x86.c.
  rule('task_struct', 'global', `${R22_ANN}: task_struct cache gets SLAB_GLOBAL_NONSENSITIVE ("A final secure solution should have this memory LOCAL, not GLOBAL")`),
  rule('signal_cache', 'global', `${R22_ANN}: signal_cache gets SLAB_GLOBAL_NONSENSITIVE`),
  rule('mm_struct', 'global', `${R22_ANN}: mm_struct cache gets SLAB_GLOBAL_NONSENSITIVE`),
  rule('vm_area_struct', 'local', `${R22_ANN}: vm_area_struct cache gets SLAB_LOCAL_NONSENSITIVE`),
  rule('radix_tree_node', 'global', `${R22_ANN}: radix_tree_node cache gets SLAB_GLOBAL_NONSENSITIVE`),
  rule('eventpoll_epi', 'global', `${R22_ANN}: eventpoll_epi cache gets SLAB_GLOBAL_NONSENSITIVE`),
  rule('eventpoll_pwq', 'global', `${R22_ANN}: eventpoll_pwq cache gets SLAB_GLOBAL_NONSENSITIVE`),
  rule('x86_emulator', 'local', `${R22_ANN}: x86_emulator cache gets SLAB_LOCAL_NONSENSITIVE`),
  rule('sighand_cache', 'sensitive', `${R22_ANN}: left unannotated ("TODO: (oweisse) ASI replace with proper ASI allcation")`),
  rule('files_cache', 'sensitive', `${R22_ANN}: files_cache left unannotated (only the fd array is local, see 'fdtable')`),
  rule('kvm_vcpu', 'local', `assumption: ${R22} gives "kernel structures containing userspace/guest register context" as locally non-sensitive; patch "kvm: asi: Splitting kvm_vcpu_arch into non/sensitive parts"`),
  // kmalloc users annotated by the same patch.
  rule('kmalloc', 'sensitive', `${R22}: sensitive unless annotated; __GFP_GLOBAL_NONSENSITIVE kmallocs go to separate nonsensitive_kmalloc_caches`),
  rule('fdtable', 'local', `${R22_ANN}: alloc_fdtable() kvmalloc_array(..., GFP_KERNEL_ACCOUNT | __GFP_LOCAL_NONSENSITIVE)`),
  rule('eventfd-ctx', 'global', `${R22_ANN}: do_eventfd() kmalloc(..., GFP_KERNEL | __GFP_GLOBAL_NONSENSITIVE)`),
  rule('timerfd-ctx', 'global', `${R22_ANN}: timerfd_create kzalloc(..., GFP_KERNEL | __GFP_GLOBAL_NONSENSITIVE)`),
  rule('elf-phdr', 'global', `${R22_ANN}: load_elf_phdrs() kmalloc(..., GFP_KERNEL | __GFP_GLOBAL_NONSENSITIVE)`),
  rule('kvm-lapic', 'local', `${R22_ANN}: kvm_create_lapic() kzalloc(..., __GFP_LOCAL_NONSENSITIVE) and its regs page`),
  rule('kvm-memslots', 'local', `${R22_ANN}: kvm_alloc_memslots() kvzalloc(..., __GFP_LOCAL_NONSENSITIVE)`),
  // Page kinds.
  rule('anon', 'local', `${R22}: locally non-sensitive "Examples include userspace memory"; patch "mm: asi: Add support for mapping all userspace memory into ASI"`),
  rule('guest-memory', 'local', `${R22}: "(or guest memory in the case of VMs)"; patch "kvm: asi: Map guest memory into restricted ASI address space"`),
  rule('kvm-run', 'local', `${R22_ANN}: kvm_vm_ioctl_create_vcpu() alloc_page(... | __GFP_LOCAL_NONSENSITIVE) for kvm_run`),
  rule('kvm', 'global', `${R22_ANN}: x86 kvm_arch_alloc_vm() __vmalloc(..., __GFP_GLOBAL_NONSENSITIVE) (assumption: the flag reaches the backing pages too)`, 'global'),
  rule('kernel-stack', 'sensitive', `${R22_ANN}: fork.c "We intentionally don't pass VM_LOCAL_NONSENSITIVE nor __GFP_LOCAL_NONSENSITIVE ... Later on we'll map the stack into the mm asi map"; patch "Properly un/mapping task stack from ASI"`, 'local'),
  rule('percpu', 'sensitive', `${R22}: default; only alloc_percpu_gfp(..., __GFP_GLOBAL_NONSENSITIVE) chunks are nonsensitive`),
  rule('page-cache', 'sensitive', `assumption: ${R22} default (no page-cache annotation in the RFC)`),
  rule('page-table', 'sensitive', `assumption: ${R22} default (user page tables are not annotated)`),
  rule('vmalloc', 'sensitive', `${R22}: default ("By default, all memory is considered sensitive")`, 'sensitive'),
];

const ASI_2025_RULES: Rule[] = [
  rule('anon', 'sensitive', `${R25_P14}: "#define GFP_USER (... | __GFP_SENSITIVE)"; "we map the direct map into the restricted address space, except pages allocated with GFP_USER"`),
  rule('guest-memory', 'sensitive', `${R25}: "Anything that accesses guest or user memory via the direct map ... will hit an asi_exit()"`),
  rule('page-cache', 'sensitive', `${R25}: "The entire page cache is removed from the direct map"`),
  rule('kernel-stack', 'sensitive', `${R24_VMALLOC}: __vmalloc_node_range "gfp_mask |= __GFP_SENSITIVE" for the backing pages, and asi_map(ASI_GLOBAL_NONSENSITIVE, area->addr, ...) for the vmalloc range`, 'global'),
  rule('vmalloc', 'sensitive', `${R24_VMALLOC}: backing pages __GFP_SENSITIVE ("nobody is interested in accessing these pages via the direct map"), vmalloc range nonsensitive`, 'global'),
  rule('kvm', 'sensitive', `${R24_VMALLOC}: struct kvm is vmalloc'd on x86, so as 'vmalloc'`, 'global'),
  rule('percpu', 'global', `${R24} patch "mm: asi: Map dynamic percpu memory as nonsensitive"`),
  rule('page-table', 'global', `assumption: page tables come from GFP_PGTABLE_KERNEL/USER (GFP_KERNEL based, no __GFP_SENSITIVE) per ${R24} denylist`),
  rule('kmalloc', 'global', `${R24}: __GFP_SENSITIVE is "currently only supported for buddy allocations, not slab"`),
];

function build(name: ModelName, description: string, classes: number[], fallback: Rule, rules: Rule[]): SensitivityModel {
  return { name, description, classes, fallback, rules: new Map(rules.map((r) => [r.kind, r])) };
}

const MODELS: Record<ModelName, SensitivityModel> = {
  none: build('none', 'no ASI: one class, nothing separated (mainline Linux 6.1)', [CLASS_SENSITIVE],
    rule('*', 'sensitive', 'no ASI: every allocation is mapped in the one kernel address space'), []),
  'asi-2022': build('asi-2022', 'Google ASI RFC 2022: allowlist; sensitive, globally and locally non-sensitive',
    [CLASS_SENSITIVE, CLASS_GLOBAL_NONSENSITIVE, CLASS_LOCAL_NONSENSITIVE],
    rule('*', 'sensitive', `${R22}: "By default, all memory is considered sensitive unless specifically categorized otherwise"`),
    ASI_2022_RULES),
  'asi-2025': build('asi-2025', 'Google ASI RFC 2024/2025: denylist; sensitive iff __GFP_SENSITIVE',
    [CLASS_SENSITIVE, CLASS_GLOBAL_NONSENSITIVE],
    // Slab caches and every other GFP_KERNEL allocation land here.
    rule('*', 'global', `${R24}: "there is a new __GFP_SENSITIVE flag (currently only supported for buddy allocations, not slab), and everything else is considered non-sensitive"`),
    ASI_2025_RULES),
};

export function getModel(model: ModelName | SensitivityModel): SensitivityModel {
  if (typeof model !== 'string') return model;
  const m = MODELS[model];
  if (m === undefined) throw new RangeError(`unknown sensitivity model '${String(model)}' (expected ${MODEL_NAMES.join(', ')})`);
  return m;
}

/** The rule that decides `kind` under `model` (the model's fallback if the kind has none). */
export function ruleFor(model: ModelName | SensitivityModel, kind: string): Rule {
  const m = getModel(model);
  return m.rules.get(kind) ?? m.fallback;
}

function toClass(cls: ClassName, owner: { kind: OwnerKind }): number {
  // Local non-sensitivity means "mapped in the restricted space of this one process/VM"; memory
  // the kernel itself owns has no such space (a kthread has no mm), so it stays sensitive.
  if (cls === 'local' && owner.kind === 'kernel') return CLASS_SENSITIVE; // assumption
  return CLASS_OF[cls];
}

/** Class of the frames of an allocation of `kind` made for `owner` (their direct-map alias). */
export function classify(model: ModelName | SensitivityModel, kind: string, owner: { kind: OwnerKind }): number {
  return toClass(ruleFor(model, kind).cls, owner);
}

/** Class of the vmalloc mapping of an allocation of `kind` (the frames' class unless the rule says otherwise). */
export function classifyMapping(model: ModelName | SensitivityModel, kind: string, owner: { kind: OwnerKind }): number {
  const r = ruleFor(model, kind);
  return toClass(r.mapping ?? r.cls, owner);
}
