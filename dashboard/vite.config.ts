import { defineConfig } from "vite";

// One page, its assets under /assets/; served by `servin dashboard` from
// the copy embedded in the binary.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1000,
  },
});
