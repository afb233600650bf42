// Entry point of the viewer bundle, loaded by imaging/templates/imaging/viewer.html.
//
// Kept small on purpose: it starts the first image's requests at once
// (preload.ts), then loads the viewer itself — Cornerstone and vtk.js, most of
// the bundle — as a separate chunk, so that the network and the download and
// parsing of that chunk overlap instead of following each other.

import "./styles.css";
import { languageFrom, translator } from "./i18n";
import { EarlyLoad } from "./preload";
import { markOnce, MARKS } from "./timing";
import type { ViewerConfig } from "./viewer/app";

markOnce(MARKS.start);

function readConfig(): ViewerConfig {
  const element = document.getElementById("viewer-config");
  if (!element?.textContent) {
    throw new Error("the page has no #viewer-config");
  }
  return JSON.parse(element.textContent) as ViewerConfig;
}

const root = document.getElementById("viewer");
if (root) {
  const config = readConfig();
  if (new URLSearchParams(window.location.search).get("loader") === "wadouri") {
    config.loader = "wadouri";
  }
  const early = new EarlyLoad({ root: config.dicomwebRoot, study: config.studyInstanceUID }).start(config.loader);
  // <html lang> is Django's active language; the config repeats it for pages that lack it.
  const t = translator(languageFrom(document.documentElement.lang || config.language));
  document.body.classList.add("viewer-page");
  const fail = (error: unknown) => {
    console.error(error);
    root.dataset.state = "error";
    root.textContent = `${t("app.error")} ${t("app.errorRetry")}`;
  };
  import("./viewer/app").then(({ Viewer }) => {
    markOnce(MARKS.viewerCode);
    const viewer = new Viewer(root, config, t, early);
    viewer.start().catch(fail);
    // Co-reading (frontend/src/coreading/): the "Read together" button, and the room named by ?room=.
    import("./coreading").then(({ startCoreading }) => startCoreading(viewer, root, config, t), console.error);
  }, fail);
}
