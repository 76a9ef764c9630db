// Arrow-key navigation for keyboards and TV remotes: an arrow moves focus
// to the nearest focusable element in that direction, measured between
// the centres of their boxes. Text fields, selects and sliders keep their
// own arrow keys, and an element with data-arrows="own" (the player)
// handles them itself.

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

type Direction = "ArrowUp" | "ArrowDown" | "ArrowLeft" | "ArrowRight";

/** Installs the key handler on the document; returns the function that removes it. */
export function installSpatialNavigation(): () => void {
  const onKeyDown = (event: KeyboardEvent) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (!isDirection(event.key)) return;
    const current = document.activeElement;
    if (!(current instanceof HTMLElement) || current === document.body) return;
    if (keepsArrows(current)) return;

    const next = nearest(current, event.key);
    if (next) {
      event.preventDefault();
      next.focus();
      next.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  };
  document.addEventListener("keydown", onKeyDown);
  return () => document.removeEventListener("keydown", onKeyDown);
}

function isDirection(key: string): key is Direction {
  return key === "ArrowUp" || key === "ArrowDown" || key === "ArrowLeft" || key === "ArrowRight";
}

function keepsArrows(element: HTMLElement): boolean {
  if (element.closest('[data-arrows="own"]')) return true;
  if (element instanceof HTMLTextAreaElement || element instanceof HTMLSelectElement) return true;
  if (element instanceof HTMLInputElement) return !["button", "submit", "reset", "checkbox", "radio"].includes(element.type);
  return element.isContentEditable;
}

function nearest(from: HTMLElement, direction: Direction): HTMLElement | null {
  const origin = from.getBoundingClientRect();
  const ox = origin.left + origin.width / 2;
  const oy = origin.top + origin.height / 2;
  const scope = from.closest("dialog[open]") ?? document;

  let best: HTMLElement | null = null;
  let bestScore = Infinity;
  for (const candidate of scope.querySelectorAll<HTMLElement>(FOCUSABLE)) {
    if (candidate === from || candidate.closest("[hidden], [inert]")) continue;
    const box = candidate.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    const dx = box.left + box.width / 2 - ox;
    const dy = box.top + box.height / 2 - oy;

    // Keep only candidates ahead in the direction, then prefer those
    // closest to the line of travel.
    let along: number;
    let across: number;
    if (direction === "ArrowRight") [along, across] = [dx, dy];
    else if (direction === "ArrowLeft") [along, across] = [-dx, dy];
    else if (direction === "ArrowDown") [along, across] = [dy, dx];
    else [along, across] = [-dy, dx];
    if (along <= 1) continue;

    const score = along + Math.abs(across) * 2;
    if (score < bestScore) {
      bestScore = score;
      best = candidate;
    }
  }
  return best;
}
