// Client-side routes under the UI's base path (/ui/). The server returns
// index.html for any path without a file extension, so each route is a
// real URL that survives a reload. The URL fragment stays free for the
// pairing offer, which must never reach the server.

export type Route =
  | { name: "library" }
  | { name: "item"; id: string }
  | { name: "play"; id: string }
  | { name: "household" }
  | { name: "security" }
  | { name: "activity" }
  | { name: "setup" }
  | { name: "pair" }
  | { name: "login" }
  | { name: "not-found" };

const BASE = import.meta.env.BASE_URL;

/** The current route and its query; read it in components to re-render on navigation. */
export const router = $state<{ route: Route; query: URLSearchParams }>({ route: parse(location.pathname), query: new URLSearchParams(location.search) });

window.addEventListener("popstate", () => update());

/** Returns the URL of a route path such as "item/abc". */
export function href(path: string): string {
  return BASE + path.replace(/^\//, "");
}

/** Opens a route; `replace` keeps the current history entry. */
export function navigate(path: string, { replace = false } = {}): void {
  const url = href(path);
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  update();
  window.scrollTo({ top: 0 });
}

/**
 * Svelte action for links inside the UI. A plain click opens the route
 * without reloading the page. A modified click (new tab) keeps the
 * browser's behaviour.
 */
export function link(anchor: HTMLAnchorElement) {
  const onClick = (event: MouseEvent) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const url = new URL(anchor.href);
    if (url.origin !== location.origin || !url.pathname.startsWith(BASE)) return;
    event.preventDefault();
    history.pushState(null, "", url.pathname + url.search + url.hash);
    update();
    window.scrollTo({ top: 0 });
  };
  anchor.addEventListener("click", onClick);
  return { destroy: () => anchor.removeEventListener("click", onClick) };
}

function update(): void {
  router.route = parse(location.pathname);
  router.query = new URLSearchParams(location.search);
}

function parse(pathname: string): Route {
  const rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname.replace(/^\/ui\/?/, "");
  const parts = rest.split("/").filter(Boolean).map(decodeURIComponent);
  const [first, second] = parts;
  if (parts.length === 0) return { name: "library" };
  if (first === "item" && second && parts.length === 2) return { name: "item", id: second };
  if (first === "play" && second && parts.length === 2) return { name: "play", id: second };
  if (parts.length === 1 && (first === "household" || first === "security" || first === "activity" || first === "setup" || first === "pair" || first === "login")) {
    return { name: first };
  }
  return { name: "not-found" };
}
