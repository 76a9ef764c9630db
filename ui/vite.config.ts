// Build of the web UI. The server serves ui/dist under /ui/ when it runs
// with HEARTH_UI_DIR set, so every asset URL starts with /ui/.
//
// The access-control and playback modules stay in the server's web folder
// and are imported from there through the `@server-web` alias, so the
// signing, pairing and player code has one copy.

import { fileURLToPath } from "node:url";

import { svelte } from "@sveltejs/vite-plugin-svelte";
import { defineConfig, type Plugin } from "vite";

const serverWeb = fileURLToPath(new URL("../crates/hearth-server/src/web", import.meta.url));

export default defineConfig({
  base: "/ui/",
  plugins: [pairModuleWithoutPage(), svelte()],
  resolve: {
    alias: { "@server-web": serverWeb },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // The CSP has no 'unsafe-eval' and no inline scripts; Vite emits
    // neither, and module preload polyfills would add an inline script.
    modulePreload: { polyfill: false },
  },
  server: {
    fs: { allow: [".", serverWeb] },
  },
});

/**
 * Removes the auto-start line of the server's pair.js. That module sets up
 * the old /pair page's form as soon as it loads in a document, and it
 * rewrites the address bar. This UI needs only its exported protocol
 * functions. The build fails when the line is gone, so a change to pair.js
 * cannot silently start the old page inside this UI.
 *
 * TODO: drop this plugin once pair.js moves its page set-up into a module
 * of its own.
 */
function pairModuleWithoutPage(): Plugin {
  const autoStart = "if (globalThis.document) setUpPage();";
  return {
    name: "hearth-pair-module-without-page",
    enforce: "pre",
    transform(code, id) {
      if (!id.startsWith(serverWeb) || !id.endsWith("/pair.js")) return null;
      if (!code.includes(autoStart)) {
        throw new Error(`${id}: expected the line ${JSON.stringify(autoStart)}; update pairModuleWithoutPage in ui/vite.config.ts`);
      }
      return { code: code.replace(autoStart, ""), map: null };
    },
  };
}
