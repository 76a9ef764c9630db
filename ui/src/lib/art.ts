// Placeholder art for items without a thumbnail: a two-colour gradient
// picked from the title, so each card looks different but stays the same
// between visits. Text on it is white on a dark-enough base (WCAG AA).

/** Pairs of hues that read well under white text. */
const HUES: [number, number][] = [
  [18, 340],
  [200, 250],
  [160, 210],
  [280, 320],
  [30, 60],
  [120, 180],
  [230, 290],
];

/** Returns a CSS background for the item's placeholder. */
export function placeholderBackground(title: string): string {
  let hash = 0;
  for (const char of title) hash = (hash * 31 + (char.codePointAt(0) ?? 0)) >>> 0;
  const [from, to] = HUES[hash % HUES.length];
  return `linear-gradient(135deg, hsl(${from} 55% 30%), hsl(${to} 50% 18%))`;
}
