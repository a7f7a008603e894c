/**
 * Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a WebSocket: enough to load a page,
 * read it with JavaScript, collect console errors and take a screenshot. Start it once per test file:
 *
 *   await using browser = await Chromium.start();
 *   await using page = await browser.newPage({ width: 1280, height: 900 });
 */

import { delay } from "./proxy.ts";
import { tracked } from "./children.ts";

type Pending = { resolve: (value: Record<string, unknown>) => void; reject: (error: Error) => void };

/** One DevTools WebSocket: numbered commands and their answers, events to listeners. */
class Session {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Map<string, ((params: Record<string, unknown>) => void)[]>();
  #next = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data));
      if (typeof message.id === "number") {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) pending?.reject(new Error(`${message.error.message} (${message.error.code})`));
        else pending?.resolve(message.result ?? {});
      } else {
        for (const listener of this.#listeners.get(message.method) ?? []) listener(message.params ?? {});
      }
    };
    socket.onclose = () => {
      for (const pending of this.#pending.values()) pending.reject(new Error("DevTools connection closed"));
      this.#pending.clear();
    };
  }

  static open(url: string): Promise<Session> {
    const socket = new WebSocket(url);
    return new Promise((resolve, reject) => {
      socket.onopen = () => resolve(new Session(socket));
      socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.#next++;
    this.#socket.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
  }

  on(method: string, listener: (params: Record<string, unknown>) => void): void {
    this.#listeners.set(method, [...(this.#listeners.get(method) ?? []), listener]);
  }

  async close(): Promise<void> {
    if (this.#socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.#socket.addEventListener("close", resolve));
    this.#socket.close();
    await closed;
  }
}

export class Page implements AsyncDisposable {
  /** Console errors, uncaught exceptions and failed loads the page reported. */
  readonly errors: string[] = [];
  readonly #session: Session;
  readonly #close: () => Promise<void>;

  constructor(session: Session, close: () => Promise<void>) {
    this.#session = session;
    this.#close = close;
    session.on("Runtime.consoleAPICalled", (params) => {
      if (params.type !== "error") return;
      const args = params.args as { value?: unknown; description?: string }[];
      this.errors.push(`console.error: ${args.map((arg) => arg.description ?? String(arg.value)).join(" ")}`);
    });
    session.on("Runtime.exceptionThrown", (params) => {
      const details = params.exceptionDetails as { text: string; exception?: { description?: string } };
      this.errors.push(`exception: ${details.exception?.description ?? details.text}`);
    });
    session.on("Log.entryAdded", (params) => {
      const entry = params.entry as { level: string; text: string; url?: string };
      if (entry.level === "error") this.errors.push(`log: ${entry.text} ${entry.url ?? ""}`);
    });
  }

  async goto(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => this.#session.on("Page.loadEventFired", () => resolve()));
    const result = await this.#session.send("Page.navigate", { url });
    if (result.errorText) throw new Error(`cannot load ${url}: ${result.errorText}`);
    await loaded;
  }

  /** Runs `expression` in the page (awaiting a promise) and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const result = await this.#session.send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    });
    if (result.exceptionDetails) {
      throw new Error(`evaluate failed: ${JSON.stringify(result.exceptionDetails)}`);
    }
    return (result.result as { value: T }).value;
  }

  /** Polls `expression` until it is truthy; its value, or an error naming `what` after `timeoutMs`. */
  async waitFor<T>(what: string, expression: string, timeoutMs = 5_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const value = await this.evaluate<T>(expression);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await delay(50);
    }
  }

  /** A PNG of the whole page. */
  async screenshot(): Promise<Uint8Array> {
    const result = await this.#session.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
    });
    return Uint8Array.from(atob(result.data as string), (c) => c.charCodeAt(0));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }
}

export class Chromium implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #browser: Session;
  readonly #port: string;
  readonly #profile: string;

  private constructor(child: Deno.ChildProcess, browser: Session, port: string, profile: string) {
    this.#child = child;
    this.#browser = browser;
    this.#port = port;
    this.#profile = profile;
  }

  /** Starts `chromium --headless` on a free DevTools port with a throw-away profile. */
  static async start(timeoutMs = 20_000): Promise<Chromium> {
    const profile = await Deno.makeTempDir({ prefix: "llmproxy-chromium-" });
    const child = tracked(
      "chromium",
      new Deno.Command("chromium", {
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-dev-shm-usage",
          "--no-first-run",
          "--remote-debugging-address=127.0.0.1",
          "--remote-debugging-port=0",
          `--user-data-dir=${profile}`,
          "about:blank",
        ],
        stdout: "null",
        stderr: "piped",
        stdin: "null",
      }).spawn(),
    );
    try {
      const url = await devtoolsUrl(child.stderr, timeoutMs);
      const browser = await Session.open(url);
      return new Chromium(child, browser, new URL(url).port, profile);
    } catch (error) {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      throw error;
    }
  }

  async newPage(viewport: { width: number; height: number; mobile?: boolean }): Promise<Page> {
    const { targetId } = await this.#browser.send("Target.createTarget", { url: "about:blank" });
    const session = await Session.open(`ws://127.0.0.1:${this.#port}/devtools/page/${targetId}`);
    const page = new Page(session, async () => {
      await session.close();
      await this.#browser.send("Target.closeTarget", { targetId }).catch(() => {});
    });
    await Promise.all([
      session.send("Page.enable"),
      session.send("Runtime.enable"),
      session.send("Log.enable"),
    ]);
    await session.send("Emulation.setDeviceMetricsOverride", {
      width: viewport.width,
      height: viewport.height,
      deviceScaleFactor: 1,
      mobile: viewport.mobile ?? false,
    });
    return page;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#browser.send("Browser.close").catch(() => {});
    await this.#browser.close().catch(() => {});
    const exited = await Promise.race([this.#child.status.then(() => true), delay(3_000).then(() => false)]);
    if (!exited) {
      this.#child.kill("SIGKILL");
      await this.#child.status;
    }
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}

/** Reads chromium's stderr until its `DevTools listening on ws://...` line, then drains the rest in the background. */
async function devtoolsUrl(stderr: ReadableStream<Uint8Array>, timeoutMs: number): Promise<string> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), timeoutMs));
  try {
    while (true) {
      const chunk = await Promise.race([reader.read(), deadline]);
      if (chunk === null) throw new Error(`chromium did not start within ${timeoutMs} ms:\n${text}`);
      if (chunk.done) throw new Error(`chromium exited before listening:\n${text}`);
      text += chunk.value;
      const match = text.match(/DevTools listening on (ws:\/\/\S+)/);
      if (match) {
        (async () => {
          while (!(await reader.read()).done) { /* drain */ }
        })().catch(() => {});
        return match[1];
      }
    }
  } finally {
    clearTimeout(timer);
  }
}
