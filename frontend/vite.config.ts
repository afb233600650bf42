// Vite build of ClinicNet's viewer. The output (frontend/dist/, git-ignored) is
// served by Django: settings.STATICFILES_DIRS maps it to /static/viewer/ and
// django-vite reads dist/manifest.json to find the content-hashed entry.
import { viteCommonjs } from "@originjs/vite-plugin-commonjs";
import { fileURLToPath } from "node:url";
import { createLogger, defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));
// Where `make run` (or runserver) serves Django during development.
const djangoOrigin = process.env.DJANGO_ORIGIN ?? "http://127.0.0.1:8000";

// The codecs' Emscripten glue mentions Node's fs and path for running under
// Node; in the browser those branches never run, so Vite's note about
// externalising them is noise in every `make` run.
const logger = createLogger();
const warn = logger.warn.bind(logger);
logger.warn = (message, options) => {
  if (!message.includes("has been externalized for browser compatibility")) {
    warn(message, options);
  }
};

export default defineConfig({
  root,
  customLogger: logger,
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
    // …but their CommonJS dependencies must be converted to ES modules.
    include: ["dicom-parser", "xmlbuilder2"],
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
      checks: { pluginTimings: false },
    },
  },
  server: {
    // Development (`npm run dev`, Django with DEBUG=true or VITE_DEV_MODE=true):
    // open http://localhost:5173/. Vite serves the bundle's modules and passes
    // everything else to Django, so page, modules and the decode workers share
    // one origin (browsers refuse cross-origin workers).
    port: 5173,
    strictPort: true,
    origin: "http://localhost:5173",
    proxy: {
      "^/(?!static/viewer/).*": { target: djangoOrigin, ws: true },
    },
  },
});
