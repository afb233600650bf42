// Entry point of the viewer bundle, loaded by imaging/templates/imaging/viewer.html.

// vtk.js extends Node's EventEmitter; the `events` package provides it in the
// browser (without it the page dies with "Class extends value undefined").
import "events";

import "./styles.css";
import { languageFrom, translator } from "./i18n";
import { Viewer, type ViewerConfig } from "./viewer/app";
import { startCoreading } from "./coreading";
import { markOnce, MARKS } from "./timing";

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
  // <html lang> is Django's active language; the config repeats it for pages that lack it.
  const t = translator(languageFrom(document.documentElement.lang || config.language));
  document.body.classList.add("viewer-page");
  const viewer = new Viewer(root, config, t);
  viewer.start().catch((error: unknown) => {
    console.error(error);
    root.dataset.state = "error";
    root.textContent = `${t("app.error")} ${t("app.errorRetry")}`;
  });
  // Co-reading (frontend/src/coreading/): the "Read together" button, and the room named by ?room=.
  startCoreading(viewer, root, config, t);
}
