/**
 * The files of the `/ui` page, embedded in the program as text imports (so `deno compile` carries them and nothing
 * is read from disk or a CDN at run time): the page, its script and style, and uPlot from its npm package with its
 * MIT licence notice kept at the top of the served script.
 */

import uplotLicense from "uplot/LICENSE" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import page from "./static/page.html" with { type: "text" };
import dashboardCss from "./static/dashboard.css" with { type: "text" };
import dashboardJs from "./static/dashboard.js" with { type: "text" };

export interface Asset {
  readonly contentType: string;
  readonly body: string;
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

export const PAGE: Asset = { contentType: "text/html; charset=utf-8", body: page };

/** Served under `/ui/assets/NAME`. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["uplot.js", { contentType: JS, body: `/*\n${uplotLicense.trim()}\n*/\n${uplotJs}` }],
  ["uplot.css", { contentType: CSS, body: uplotCss }],
  ["dashboard.js", { contentType: JS, body: dashboardJs }],
  ["dashboard.css", { contentType: CSS, body: dashboardCss }],
]);
