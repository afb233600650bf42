// Unit tests of the viewer's own logic (no Cornerstone, no DOM): they run in
// Node, once (`vitest run`), from `make test` through `npm test`.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
    watch: false,
  },
});
