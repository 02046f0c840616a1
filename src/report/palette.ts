/**
 * Colours: one fixed colour per innovation, the same in every figure, from colour-blind-safe
 * palettes (Okabe & Ito 2008 for the paper's study set; Paul Tol's "muted" for the rest).
 * Yellow is left out: it is unreadable on white.
 */
import { INNOVATIONS, type PaperCategory } from '../innovations.js';

const INNOVATION_COLORS: Record<string, string> = {
  baseline: '#000000',
  fused: '#E69F00', // orange
  rope: '#56B4E9', // sky blue
  layernorm: '#009E73', // bluish green
  fa_rope_ln: '#0072B2', // blue
  mqa: '#D55E00', // vermillion
  sparse: '#CC79A7', // reddish purple
  blocksparse: '#997700', // ochre (our block-sparse kernel, not the paper's)
  rmsnorm: '#44AA99', // teal
  gqa: '#882255', // wine
  moe: '#999933', // olive
  swiglu: '#332288', // indigo
  baseline_fair: '#555555', // dark grey (the second baseline)
  fused_fair: '#8C5A00', // dark orange (fused attention's placebo twin on the fair baseline)
  postln: '#117733', // green
  modern: '#AA4499', // purple
  modern_nonorm: '#CC6677', // rose
  modern_postnorm: '#661100', // brown
  modern_learned: '#6699CC', // steel blue
  modern_gelu: '#88CCEE', // cyan
  modern_layernorm: '#888888', // grey
};

/**
 * The colour of an innovation: its fixed colour above, else (a newly added innovation, a user's
 * own variant) one derived from its id: stable, and distinct from the fixed ones and, all but
 * surely, from each other (1080 hue/lightness pairs), so adding an innovation needs no edit here.
 */
export function innovationColor(id: string): string {
  const c = INNOVATION_COLORS[id];
  if (c) return c;
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return hslHex(h % 360, 0.55, [0.35, 0.45, 0.55][Math.floor(h / 360) % 3]);
}

/** HSL (hue in degrees, saturation and lightness in [0, 1]) as '#RRGGBB'. */
function hslHex(hue: number, s: number, l: number): string {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => {
    const k = (n + hue / 30) % 12;
    const v = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(v * 255)
      .toString(16)
      .padStart(2, '0');
  };
  return `#${f(0)}${f(8)}${f(4)}`.toUpperCase();
}

export const CATEGORY_COLORS: Record<PaperCategory, string> = {
  baseline: '#000000',
  'compute-independent': '#0072B2',
  'compute-dependent': '#D55E00',
  'not in paper': '#999999',
};

export function categoryColor(c: PaperCategory): string {
  const col = CATEGORY_COLORS[c];
  if (!col) throw new Error(`unknown category "${c}"; valid: ${Object.keys(CATEGORY_COLORS).join(', ')}`);
  return col;
}

/** '#RRGGBB' -> 'rgba(r,g,b,a)' (for translucent bands). */
export function withAlpha(hex: string, alpha: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) throw new Error(`colour "${hex}" is not of the form #RRGGBB`);
  return `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${alpha})`;
}

/** Registry label for an id, or the id itself for unknown variants. */
export function innovationLabel(id: string, given?: string): string {
  if (given) return given;
  return INNOVATIONS.find((i) => i.id === id)?.label ?? id;
}

/** Registry order (baseline first), unknown ids last in first-seen order. */
export function registryOrder(ids: string[]): string[] {
  const known = INNOVATIONS.map((i) => i.id);
  const uniq = [...new Set(ids)];
  const rank = (id: string) => {
    const k = known.indexOf(id);
    return k < 0 ? known.length + uniq.indexOf(id) : k;
  };
  return uniq.sort((a, b) => rank(a) - rank(b));
}
