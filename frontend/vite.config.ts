// Vite build of ClinicNet's viewer. The output (frontend/dist/, git-ignored) is
// served by Django: settings.STATICFILES_DIRS maps it to /static/viewer/ and
// django-vite reads dist/manifest.json to find the content-hashed entry.
import { viteCommonjs } from "@originjs/vite-plugin-commonjs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root,
  // Must match STATIC_URL + the STATICFILES_DIRS prefix in clinicnet/settings.py:
  // chunk, worker and codec (.wasm) URLs are resolved against it.
  base: "/static/viewer/",
  plugins: [
    // Only the dev server needs it: some of Cornerstone's dependencies are
    // CommonJS, which the production build converts by itself.
    viteCommonjs(),
  ],
  optimizeDeps: {
    // Pre-bundling breaks Cornerstone's `new URL(..., import.meta.url)` worker
    // and codec references, so the dev server serves these packages as they are.
    exclude: ["@cornerstonejs/core", "@cornerstonejs/tools", "@cornerstonejs/dicom-image-loader"],
    include: ["dicom-parser"],
  },
  worker: {
    // The image loader's decode worker imports the codecs as ES modules.
    format: "es",
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    manifest: "manifest.json",
    target: "es2022",
    // Cornerstone (vtk.js) alone is above Vite's default warning size.
    chunkSizeWarningLimit: 4000,
    rollupOptions: {
      input: { viewer: `${root}src/main.ts` },
    },
  },
  server: {
    // `npm run dev` with DEBUG=true: django-vite points <script> tags here.
    port: 5173,
    strictPort: true,
    origin: "http://localhost:5173",
  },
});
